"""Point-in-time features and labels: (deal, as_of) snapshots built only from what was
knowable at as_of. Entry points: :func:`features.build.build_features`,
:func:`features.build.build_labels` and :func:`features.catalog.feature_catalog`."""
