"""Build the offline HTML template of `dvc plots show` / `dvc plots diff`: DVC's page links vega,
vega-lite and vega-embed from a CDN, which a machine without internet cannot reach; this template holds
them inline (from npm, the versions DVC's renderer names), so the page renders anywhere and is one
self-contained file to send. It also lays the page out compactly (charts and images side by side, images
scaled down; a click opens one at full size) and leaves out a chart whose file holds no data points (DVC
writes an empty spec for it). Registered in .dvc/config.local (this machine's DVC config) by a path
relative to .dvc/, as DVC reads it: no absolute path in any config.

Usage: python scripts/plots_template.py [--cache .cache/vega]   (run by scripts/setup.sh)
"""
import argparse
import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"vega": "5.20.2", "vega-lite": "5.2.0", "vega-embed": "6.18.2"}  # dvc_render's CDN versions
PAGE = r"""<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>DVC plots: defect-incremental</title>
@INLINE_SCRIPTS@
<script type="text/javascript">
// DVC writes `var spec = {}` for a plot whose file holds no data points: leave that plot out of the page,
// and the picture of the same name beside it (X.csv's X.png: e.g. the distillation trace of fine-tuning,
// which distils nothing)
window.emptyPlots = [];
(function () {
  var embed = window.vegaEmbed;
  window.vegaEmbed = function (el, spec, opts) {
    if (spec && typeof spec === "object" && Object.keys(spec).length === 0) {
      var div = document.querySelector(el);
      if (div) div.remove();
      window.emptyPlots.push(el.replace(/^#/, "").replace(/_(csv|tsv|json|yaml|yml)$/, ""));
      return Promise.resolve(null);
    }
    return embed(el, spec, opts);
  };
})();
</script>
<style>
  body { font-family: sans-serif; margin: 12px; display: flex; flex-wrap: wrap; gap: 10px 12px;
         align-items: flex-start; }
  body > h1 { flex-basis: 100%; font-size: 18px; margin: 0; }
  body > p, section > h2 { flex-basis: 100%; margin: 0; }
  body > p { font-size: 13px; color: #444; }
  section { flex-basis: 100%; display: flex; flex-wrap: wrap; gap: 8px 12px; align-items: flex-start;
            border-top: 1px solid #bbb; padding-top: 4px; }
  section > h2 { font-size: 15px; }
  section > div.samples { display: grid; grid-template-columns: auto auto; gap: 4px; }
  table { border-spacing: 15px; }
  /* DVC's image blocks: the image's path, then one box per revision (its name above the image) */
  div:has(> div > img) { border: 1px solid #ccc !important; white-space: normal !important; padding: 1px; }
  div:has(> div > img) p { margin: 1px 0; font-size: 11px; overflow-wrap: anywhere; }
  div:has(> div > img) > div { border: none !important; margin: 0 !important; }
  img { max-width: 330px; height: auto; cursor: zoom-in; display: block; }
  section > div.samples img { max-width: 200px; }
  img.full { max-width: none; cursor: zoom-out; }
</style>
</head>
<body>
<h1>defect-incremental: report page</h1>
<p>AP50 per class and run, the old classes over the increments, your own increments; then one section per
run and phase: its training curve and distillation trace, and detections drawn on test images (ground truth
left, predictions right). Click an image for its full size.</p>
{plot_divs}
<script type="text/javascript">
// One section per folder of plots (a run, or a phase of a chain: plots/RUN/, plots/CHAIN/phaseK/): its
// charts, its images, its samples two by two (each image block captioned by its file name only); the
// report's own charts (reports/) stay on top.
(function () {
  var slug = function (s) { return s.replace(/[!@#$%^&*()\[\]{};,<>?\\\/:.|`~=_+ ]/g, "_"); };  // DVC's ids
  var blocks = Array.prototype.filter.call(document.body.children,
                                           function (e) { return e.tagName === "DIV" && e.id; });
  var sections = {}, order = [];
  var open = function (folder) {
    if (!sections[folder]) {
      var s = document.createElement("section"), h = document.createElement("h2");
      h.textContent = folder;
      s.appendChild(h);
      ["charts", "images", "samples"].forEach(function (part) {
        s[part] = document.createElement("div");
        s[part].className = part;
        s[part].style.display = part === "samples" ? "" : "contents";
        s.appendChild(s[part]);
      });
      sections[folder] = s;
      order.push(folder);
    }
    return sections[folder];
  };
  blocks.forEach(function (b) {  // image blocks name their file in their first <p>
    var img = b.querySelector("img"), p = b.querySelector("p");
    if (img && window.emptyPlots.indexOf(b.id.replace(/_(png|jpg|jpeg|gif|svg)$/, "")) >= 0) {
      b.remove();
      b.folder = "(empty)";
    } else if (img && p) {
      var path = p.textContent.trim(), folder = path.replace(/\/[^\/]*$/, "");
      var sample = /\/samples$/.test(folder);
      folder = folder.replace(/\/samples$/, "");
      p.title = path;
      p.textContent = path.slice(path.lastIndexOf("/") + 1);
      open(folder)[sample ? "samples" : "images"].appendChild(b);
      b.folder = folder;
    }
  });
  blocks.forEach(function (b) {  // a chart joins the section whose folder its id starts with (the longest)
    if (b.folder) return;
    var best = null;
    order.forEach(function (f) {
      if (b.id.indexOf(slug(f) + "_") === 0 && (!best || f.length > best.length)) best = f;
    });
    if (best) sections[best].charts.appendChild(b);
  });
  var rank = function (f) {  // sections in the order of their first chart (dvc.yaml's order), then by name
    var c = sections[f].charts.firstChild;
    return c ? blocks.indexOf(c) : blocks.length;
  };
  order.sort(function (a, b) { return rank(a) - rank(b) || (a < b ? -1 : 1); });
  order.forEach(function (f) { document.body.appendChild(sections[f]); });
  document.addEventListener("click", function (e) {
    if (e.target.tagName === "IMG") e.target.classList.toggle("full");
  });
})();
</script>
</body>
</html>
"""


def fetch(cache: Path) -> dict:
    """The minified UMD builds, from the npm registry (cached)."""
    cache.mkdir(parents=True, exist_ok=True)
    scripts = {}
    for name, version in PACKAGES.items():
        js = cache / f"{name}-{version}.min.js"
        if not js.exists():
            tgz = cache / f"{name}-{version}.tgz"
            if not tgz.exists():
                subprocess.run(["npm", "pack", "--loglevel=error", f"{name}@{version}", "--pack-destination", str(cache)],
                               check=True, stdout=subprocess.DEVNULL)
            with tarfile.open(tgz) as t:
                js.write_bytes(t.extractfile(f"package/build/{name}.min.js").read())
        scripts[name] = js.read_text(encoding="utf-8")
    return scripts


def escape(js: str) -> str:
    """Inline JavaScript must not close its <script> element early."""
    return js.replace("</script", "<\\/script")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "vega")
    args = ap.parse_args()
    try:
        scripts = fetch(args.cache)
    except (OSError, subprocess.CalledProcessError, KeyError) as e:
        sys.exit(f"plots_template: could not get {', '.join(PACKAGES)} from npm ({e})")
    inline = "\n".join(f'<script type="text/javascript">/* {n} {PACKAGES[n]} */\n{escape(s)}\n</script>'
                       for n, s in scripts.items())
    template = args.cache / "dvc_plots_template.html"
    template.write_text(PAGE.replace("@INLINE_SCRIPTS@", inline), encoding="utf-8")
    relative = os.path.relpath(template.resolve(), ROOT / ".dvc")  # DVC reads it relative to .dvc/
    subprocess.run([sys.executable, "-m", "dvc", "config", "--local", "plots.html_template", relative],
                   cwd=ROOT, check=True)
    print(f"plots_template: {template} ({template.stat().st_size // 1024} KiB), set in .dvc/config.local")


if __name__ == "__main__":
    main()
