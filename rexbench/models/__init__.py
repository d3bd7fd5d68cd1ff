"""Models: shared layers and layouts, one builder per family (ReXNet, EfficientNet, MobileNet), the
factory, external models (timm, torchvision, `py:`), checkpoints, input shapes and provenance.
Each family module imports torch; nothing here is imported until a model is built.

May import: spec, paper, registry, stats, errors.
"""
