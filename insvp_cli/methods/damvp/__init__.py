"""DAM-VP: diversity-aware meta visual prompting (Huang et al., "Diversity-Aware Meta Visual Prompting",
CVPR 2023), the "DAM-VP" row of the InsVP paper's Tables 1, 3 and 4.

The downstream training set is partitioned into clusters on the frozen backbone's features; each cluster
has its own input-space prompt, a padding frame as in VP (Bahng et al.; 30 px at 224, 69,840 values); an
image gets the prompt of the cluster whose prototype (mean feature) is nearest to its own frozen feature,
in training and at test time alike. The frozen backbone's pooled features of the prompted image feed a
linear head that trains with the prompts (DAM-VP's head-tuning variant, the one its ViT-B/16 numbers use;
PyTorch's default ``nn.Linear`` init, as timm's ``reset_classifier`` gives it).

From DAM-VP's code (``task_adapting/adapter.py``): agglomerative clustering with average linkage of the
features of (at most) 1,000 training images as training sees them (augmented: its training loader's batches),
prototypes as cluster means, the nearest prototype by Euclidean distance, every cluster's prompt starting from
the same prompt. Where ours differs:

- the number of clusters is a config value (``num_clusters``), because a checkpoint's shapes must follow
  from its config; DAM-VP cuts the dendrogram at a distance threshold instead (10 for ViT-B/16 ImageNet-22k
  features), so its count depends on the data. Ours cuts the same dendrogram at ``num_clusters``.
- the 1,000 images are a seeded random sample of the training split (DAM-VP takes the first batches of its
  shuffled loader).
- the optimizer is the run's (``train.*``). DAM-VP's is SGD *without* momentum (its parameter groups spell the
  key ``momemtum``, which SGD ignores), weight decay on the prompts only, and one learning rate for prompts and
  head: it asks lr 0.1 for the head, but its cosine schedule (20 % warm-up) writes the prompts' lr into every
  group at every step, so the head trains at the prompts' lr, as here.

Meta-prompt initialisation (DAM-VP §3.3, ``meta-training/meta_ht.py``) is an option: with ``meta_data``
(a list of data configs, e.g. DAM-VP's SUN397, STL-10, Fru92, Veg200, Oxford Pets and EuroSAT), the shared
starting prompt is first meta-trained with Reptile on those datasets, diversity-aware as in DAM-VP (each
meta dataset clustered the same way; one batch of every dataset per meta step, ``meta_inner_steps`` SGD
steps per cluster prompt and a per-dataset linear head at lr 0.1, then the starting prompt moves towards
the mean of the adapted cluster prompts; 4 inner steps, Reptile step 0.5, inner lr 1.0 and weight decay 1e-4
by default: its ViT-B/22k head-tuning command in its README). The default, ``meta_data: []``, is DAM-VP's run
without a meta-trained checkpoint: every cluster prompt starts from the same standard-normal draw (VP's init).
"""
