"""Build the offline HTML template of `dvc plots show` / `dvc plots diff`: DVC's page links vega,
vega-lite and vega-embed from a CDN, which a machine without internet cannot reach; this template holds
them inline (from npm, the versions DVC's renderer names), so the page renders anywhere and is one
self-contained file to send. Registered in .dvc/config.local (this machine's DVC config).

Usage: python scripts/plots_template.py [--cache .cache/vega]   (run by scripts/setup.sh)
"""
import argparse
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"vega": "5.20.2", "vega-lite": "5.2.0", "vega-embed": "6.18.2"}  # dvc_render's CDN versions
PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>DVC plots: defect-incremental</title>
{inline_scripts}
<style>
  body {{ font-family: sans-serif; margin: 16px; }}
  table {{ border-spacing: 15px; }}
  img {{ max-width: 100%; }}
</style>
</head>
<body>
{{plot_divs}}
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
    template.write_text(PAGE.format(inline_scripts=inline), encoding="utf-8")
    subprocess.run([sys.executable, "-m", "dvc", "config", "--local", "plots.html_template", str(template.resolve())],
                   cwd=ROOT, check=True)
    print(f"plots_template: {template} ({template.stat().st_size // 1024} KiB), set in .dvc/config.local")


if __name__ == "__main__":
    main()
