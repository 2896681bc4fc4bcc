"""Stage prepare: convert the selected dataset to COCO JSON (data/prepared/{train,test}.json).

Reads params: seed, dataset, datasets. The synthetic dataset's images are generated into
data/prepared/synthetic/; real datasets are read in place from their root. Every file is checked as
it is read (docs/pipeline.md, "Data checks"); on any problem the stage stops with one line naming the file and
leaves data/prepared/ as it was.
"""
from detectron_ext.data.sources import read_dataset
from detectron_ext.file_io import atomic_write_json, staged_dir
from pipeline.params import dataset_spec, load_params, run_stage
from pipeline.runs import PREPARED


def main():
    params = load_params()
    with staged_dir(PREPARED) as staging:  # replaced as a whole, only when everything was read
        train, test = read_dataset(dataset_spec(params), seed=params["seed"], work_dir=staging,
                                   final_dir=PREPARED)
        atomic_write_json(staging / "train.json", train)
        atomic_write_json(staging / "test.json", test)
    print(f"{params['dataset']}: {len(train['images'])} train / {len(test['images'])} test images, "
          f"{len(train['annotations'])} / {len(test['annotations'])} boxes -> {PREPARED}")


if __name__ == "__main__":
    run_stage(main)
