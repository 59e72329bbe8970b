"""Run doccano's auto-labelling pipeline as doccano runs it for a Span project, on texts from stdin
(a JSON list), with the configuration a user POSTs to doccano (argv[1]) pointed at argv[2] with key
argv[3]; prints the labels doccano would store, per text, as JSON. Run in the annotation tools'
environment, where auto-labeling-pipeline is installed."""
import copy
import json
import sys

from auto_labeling_pipeline.labels import SequenceLabels
from auto_labeling_pipeline.mappings import MappingTemplate
from auto_labeling_pipeline.models import RequestModelFactory
from auto_labeling_pipeline.pipeline import pipeline
from auto_labeling_pipeline.postprocessing import PostProcessor

config = json.load(open(sys.argv[1]))
config["model_attrs"]["url"] = sys.argv[2]
config["model_attrs"]["headers"]["X-API-Key"] = sys.argv[3]
out = []
for text in json.load(sys.stdin):
    model = RequestModelFactory.create(config["model_name"], copy.deepcopy(config["model_attrs"]))
    template = MappingTemplate(label_collection=SequenceLabels, template=config["template"])
    labels = pipeline(text, model, template, PostProcessor(config["label_mapping"]))
    out.append(labels.dict())
print(json.dumps(out))
