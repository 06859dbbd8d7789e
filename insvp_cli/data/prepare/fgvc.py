"""Sources of the five FGVC datasets of VPT's benchmark (InsVP, ACM MM 2024, §4.1), arranged in the layouts of
:mod:`insvp_cli.data.fgvc`; their train / val / test JSON splits ship with insvp (``insvp_cli/data/fgvc_splits``).

NABirds is downloaded only after accepting its terms on the Cornell Lab's page, and the authors' Stanford Cars
download is offline (pytorch/vision#7545): both are placed by hand (``--from DIR``) and verified by the shipped
splits (every listed image must be there and readable).
"""

from __future__ import annotations

from .sources import Place, Remote, Source, Unpack, register_source
from .torchvision_sets import FLOWERS_FILES, FLOWERS_LICENCE

register_source(Source(
    "cub", "cub", "cub",
    (Remote("CUB_200_2011.tgz", ("https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",),
            1150585339, "sha256:0c685df5597a8b24909f6a7c9db6d11e008733779a671760afef78feb49bf081",
            "tensorflow-datasets 4.9.10, url_checksums/caltech_birds2011.txt"),),
    (Unpack("CUB_200_2011.tgz", strip="CUB_200_2011/"),), "https://www.vision.caltech.edu/datasets/cub_200_2011/",
    "Wah et al. (2011), Caltech; images from Flickr, for non-commercial research and education", ("hta", "fgvc"),
))
register_source(Source(
    "nabirds", "nabirds", "nabirds",
    (Remote("nabirds.tar.gz", (), None, None, "no published checksum: verified by the shipped splits "
                                              "(48,562 images present and readable)"),),
    (Unpack("nabirds.tar.gz", strip="nabirds/"),), "https://dl.allaboutbirds.org/nabirds",
    "Cornell Lab of Ornithology; non-commercial research use under the terms accepted on download", ("hta", "fgvc"),
    manual="accept the terms at https://dl.allaboutbirds.org/nabirds, download nabirds.tar.gz into a folder and "
           "pass that folder with --from",
))
register_source(Source(
    "oxford_flowers", "oxford_flowers", "oxford_flowers", FLOWERS_FILES,
    (Unpack("102flowers.tgz"), Place("imagelabels.mat"), Place("setid.mat")),
    "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/", FLOWERS_LICENCE, ("fgvc",),
))
register_source(Source(
    "stanford_dogs", "stanford_dogs", "stanford_dogs",
    (Remote("images.tar", ("http://vision.stanford.edu/aditya86/ImageNetDogs/images.tar",), 793579520,
            "sha256:a443fc2f9a851aa1a7b8e4fa4af94b8459fce2c9f5a2f4dd4669cf9673a4ec58",
            "tensorflow-datasets 4.9.10, datasets/stanford_dogs/checksums.tsv"),),
    (Unpack("images.tar"),), "http://vision.stanford.edu/aditya86/ImageNetDogs/",
    "Khosla et al. (2011); ImageNet images, under ImageNet's terms (non-commercial research)", ("hta", "fgvc"),
))
CARS_PRIMARY = "http://ai.stanford.edu/~jkrause/car196/"
CARS_NOTE = ("no published checksum: verified by the shipped splits (16,185 images present and readable); the "
             "authors' URL is offline, the mirror is the Internet Archive's copy of it")
register_source(Source(
    "stanford_cars", "stanford_cars", "stanford_cars",
    (Remote("car_ims.tgz", (f"https://web.archive.org/web/2021id_/{CARS_PRIMARY}car_ims.tgz",), None, None,
            CARS_NOTE),
     Remote("cars_annos.mat", (f"https://web.archive.org/web/2021id_/{CARS_PRIMARY}cars_annos.mat",), None, None,
            CARS_NOTE)),
    (Unpack("car_ims.tgz"), Place("cars_annos.mat")), "https://ai.stanford.edu/~jkrause/cars/car_dataset.html",
    "Krause et al. (2013); ImageNet's terms (non-commercial research)", ("fgvc",),
    manual="if the Internet Archive's copy fails, get car_ims.tgz and cars_annos.mat (the authors' all-images "
           "release, not cars_train.tgz) from any copy, put them in a folder and pass it with --from",
))
