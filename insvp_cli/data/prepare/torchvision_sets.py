"""Sources of the HTA datasets that torchvision reads (InsVP, ACM MM 2024, §4.1): CIFAR-10/100, SVHN, GTSRB,
Food-101, DTD and Flowers-102, arranged in the layouts of :mod:`insvp_cli.data.torchvision_sets`.

The files are the ones torchvision's own dataset classes download, with the MD5s those classes pin (torchvision
0.29), or, where the ``tensorflow-datasets`` package (4.9.10) pins the very same file, its SHA-256 and size.
"""

from __future__ import annotations

from .sources import Place, Remote, Source, Unpack, register_source

TV = "torchvision.datasets.{} (0.29)"
TFDS = "tensorflow-datasets 4.9.10, {}"
TORONTO = "https://www.cs.toronto.edu/~kriz/"
GTSRB_BASE = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"
FLOWERS_BASE = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
FLOWERS_CHECKSUMS = TFDS.format("datasets/oxford_flowers102/checksums.tsv")

# the three files of Oxford Flowers-102: torchvision's Flowers102 and the FGVC Oxford Flowers share them
FLOWERS_FILES = (
    Remote("102flowers.tgz", (FLOWERS_BASE + "102flowers.tgz",), 344862509,
           "sha256:2d01ecc807db462958cfe3d92f57a8c252b4abd240eb955770201e45f783b246", FLOWERS_CHECKSUMS),
    Remote("imagelabels.mat", (FLOWERS_BASE + "imagelabels.mat",), 502,
           "sha256:4903e94206bac23bf772aadf06451916df56b58fc483a62db32a97b82656651d", FLOWERS_CHECKSUMS),
    Remote("setid.mat", (FLOWERS_BASE + "setid.mat",), 14989,
           "sha256:46b8678f91fd95d3c8f4feab80d271a6c834a1dd896fe29fd3e6ad9ce5c8dccd", FLOWERS_CHECKSUMS),
)
FLOWERS_LICENCE = "Visual Geometry Group, University of Oxford; for research use (no licence stated on the page)"
CIFAR_LICENCE = "Krizhevsky (2009); no licence stated, distributed for research from the authors' page"

register_source(Source(
    "cifar10", "cifar10", "cifar10",
    (Remote("cifar-10-python.tar.gz", (TORONTO + "cifar-10-python.tar.gz",), 170498071,
            "md5:c58f30108f718f92721af3b95e74349a",
            TV.format("CIFAR10") + "; the size is the server's Content-Length, the dataset page says 163 MB"),),
    (Unpack("cifar-10-python.tar.gz"),), "https://www.cs.toronto.edu/~kriz/cifar.html", CIFAR_LICENCE, ("hta",),
))
register_source(Source(
    "cifar100", "cifar100", "cifar100",
    (Remote("cifar-100-python.tar.gz", (TORONTO + "cifar-100-python.tar.gz",), None,
            "md5:eb9058c3a382ffc7106e4002c42a8d85", TV.format("CIFAR100") + "; the size is not published (161 MB)"),),
    (Unpack("cifar-100-python.tar.gz"),), "https://www.cs.toronto.edu/~kriz/cifar.html", CIFAR_LICENCE, ("hta",),
))
SVHN_CHECKSUMS = TFDS.format("datasets/svhn_cropped/checksums.tsv") + "; torchvision.datasets.SVHN pins its MD5"
register_source(Source(
    "svhn", "svhn", "svhn",
    (Remote("train_32x32.mat", ("http://ufldl.stanford.edu/housenumbers/train_32x32.mat",), 182040794,
            "sha256:435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8", SVHN_CHECKSUMS),
     Remote("test_32x32.mat", ("http://ufldl.stanford.edu/housenumbers/test_32x32.mat",), 64275384,
            "sha256:cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b", SVHN_CHECKSUMS)),
    (Place("train_32x32.mat"), Place("test_32x32.mat")), "http://ufldl.stanford.edu/housenumbers/",
    "Netzer et al. (2011); non-commercial use only", ("hta",),
))
GTSRB_NOTE = TV.format("GTSRB") + "; sizes not published"
register_source(Source(
    "gtsrb", "gtsrb", "gtsrb",
    (Remote("GTSRB-Training_fixed.zip", (GTSRB_BASE + "GTSRB-Training_fixed.zip",), None,
            "md5:513f3c79a4c5141765e10e952eaa2478", GTSRB_NOTE),
     Remote("GTSRB_Final_Test_Images.zip", (GTSRB_BASE + "GTSRB_Final_Test_Images.zip",), None,
            "md5:c7e4e6327067d32654124b0fe9e82185", GTSRB_NOTE),
     Remote("GTSRB_Final_Test_GT.zip", (GTSRB_BASE + "GTSRB_Final_Test_GT.zip",), None,
            "md5:fe31e9c9270bbcd7b84b7f21a9d9d9e5", GTSRB_NOTE)),
    (Unpack("GTSRB-Training_fixed.zip", "gtsrb"), Unpack("GTSRB_Final_Test_Images.zip", "gtsrb"),
     Unpack("GTSRB_Final_Test_GT.zip", "gtsrb")),
    "https://benchmark.ini.rub.de/gtsrb_dataset.html", "Stallkamp et al. (2012); free for research use", ("hta",),
))
register_source(Source(
    "food101", "food101", "food101",
    (Remote("food-101.tar.gz", ("http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",), 4996278331,
            "sha256:d97d15e438b7f4498f96086a4f7e2fa42a32f2712e87d3295441b2b6314053a4",
            TFDS.format("url_checksums/food101.txt") + "; torchvision.datasets.Food101 pins its MD5"),),
    (Unpack("food-101.tar.gz"),), "https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/",
    "Bossard et al. (2014); images from foodspotting.com under their own terms, for research", ("hta",),
))
register_source(Source(
    "dtd", "dtd", "dtd",
    (Remote("dtd-r1.0.1.tar.gz", ("https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz",),
            625239812, "sha256:e42855a52a4950a3b59612834602aa253914755c95b0cff9ead6d07395f8e205",
            TFDS.format("url_checksums/dtd.txt") + "; torchvision.datasets.DTD pins its MD5"),),
    (Unpack("dtd-r1.0.1.tar.gz", "dtd"),), "https://www.robots.ox.ac.uk/~vgg/data/dtd/",
    "Cimpoi et al. (2014); for research purposes only", ("hta",),
))
register_source(Source(
    "flowers102", "flowers102", "flowers102", FLOWERS_FILES,
    (Unpack("102flowers.tgz", "flowers-102"), Place("imagelabels.mat", "flowers-102"),
     Place("setid.mat", "flowers-102")),
    "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/", FLOWERS_LICENCE, ("hta",),
))
