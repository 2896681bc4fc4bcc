// Minimal replacement for detectron2 v0.6's C++ extension (detectron2._C).
//
// The PyPI sdist `pb1-detectron2==0.6` ships detectron2's Python code without
// `detectron2/layers/csrc`. This project uses none of the compiled kernels
// (rotated boxes, deformable convolution, fast COCO evaluation); detectron2
// still imports `_C` at module load and its environment report calls the two
// version functions below. Any kernel that is called raises a clear error.
#include <torch/extension.h>
#include <sstream>
#include <stdexcept>
#include <string>

namespace {

std::string get_compiler_version() {
  std::ostringstream ss;
#if defined(__GNUC__) && !defined(__clang__)
  ss << "GCC " << __GNUC__ << "." << __GNUC_MINOR__;
#elif defined(__clang__)
  ss << "clang " << __clang_major__ << "." << __clang_minor__;
#else
  ss << "unknown";
#endif
  return ss.str();
}

std::string get_cuda_version() { return "not available (CPU-only build)"; }

bool has_cuda() { return false; }

[[noreturn]] void not_built(const std::string& name) {
  throw std::runtime_error(
      "detectron2._C." + name +
      " is not compiled in this build (the project's minimal extension provides "
      "only version information; rotated boxes, deformable convolution and the "
      "fast COCO evaluator are unavailable)");
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("get_compiler_version", &get_compiler_version, "compiler used to build _C");
  m.def("get_cuda_version", &get_cuda_version, "CUDA version used to build _C");
  m.def("has_cuda", &has_cuda, "whether _C was built with CUDA");
  for (const char* name :
       {"box_iou_rotated", "nms_rotated", "roi_align_rotated_forward",
        "roi_align_rotated_backward", "deform_conv_forward",
        "deform_conv_backward_input", "deform_conv_backward_filter",
        "modulated_deform_conv_forward", "modulated_deform_conv_backward",
        "COCOevalAccumulate", "COCOevalEvaluateImages", "InstanceAnnotation",
        "ImageEvaluation"}) {
    std::string fn(name);
    m.def(name, [fn](py::args, py::kwargs) { not_built(fn); });
  }
}
