"""Stage prepare: convert the selected dataset to COCO JSON (data/prepared/{train,test}.json).

Reads params: seed, dataset, datasets. The synthetic dataset's images are generated into
data/prepared/synthetic/; real datasets are read in place from their root.
"""
from detectron_ext.data.coco_format import atomic_write_json
from detectron_ext.data.sources import read_dataset
from detectron_ext.pipeline import PREPARED, dataset_spec, load_params


def main():
    params = load_params()
    train, test = read_dataset(dataset_spec(params), seed=params["seed"], work_dir=PREPARED)
    atomic_write_json(PREPARED / "train.json", train)
    atomic_write_json(PREPARED / "test.json", test)
    print(f"{params['dataset']}: {len(train['images'])} train / {len(test['images'])} test images, "
          f"{len(train['annotations'])} / {len(test['annotations'])} boxes -> {PREPARED}")


if __name__ == "__main__":
    main()
