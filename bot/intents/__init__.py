"""Understanding residents' messages: normalisation, jieba segmentation, intent rules and slots."""

from bot.intents.classifier import Classification, Classifier, get_classifier

__all__ = ["Classification", "Classifier", "get_classifier"]
