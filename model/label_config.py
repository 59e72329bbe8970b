"""A Label Studio labelling config read for what a text NER backend needs: the <Labels> control over
a <Text> object, its label values, and which of the model's types each stands for."""
from dataclasses import dataclass, field

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

MAX_CONFIG_BYTES = 1 << 20


class LabelConfigError(ValueError):
    """A config with no <Labels> over a <Text>, or not XML."""


@dataclass
class LabelConfig:
    from_name: str                 # the <Labels> control's name
    to_name: str                   # the <Text> object's name
    field: str                     # the task data key of the text ("$text" -> "text")
    values: list                   # the project's label values, in config order
    by_type: dict = field(default_factory=dict)   # model type -> project label value

    def label_of(self, model_type):
        return self.by_type.get(model_type)

    def type_of(self, value):
        """The model type a project label stands for (the label itself where none does)."""
        return next((t for t, v in self.by_type.items() if v == value), value)


def parse(config, model_types):
    """The LabelConfig of ``config`` (XML text) for a model of ``model_types``. A project label is the
    model type of the same name (case-insensitively), or of one its ``predicted_values`` lists
    ("A,B"); a type the project lacks is left out."""
    if not isinstance(config, str) or not config.strip():
        raise LabelConfigError("the label config is empty")
    if len(config.encode("utf-8", "replace")) > MAX_CONFIG_BYTES:
        raise LabelConfigError("the label config is over 1 MiB")
    try:  # defusedxml: entities and external references, which a config has no use for, are refused
        root = fromstring(config)
    except (ParseError, DefusedXmlException) as e:
        raise LabelConfigError(f"the label config is not XML: {e}") from None
    texts = {el.get("name"): el.get("value", "") for el in root.iter() if el.tag in ("Text", "HyperText")
             and el.get("name")}
    for labels in root.iter("Labels"):
        to_name = labels.get("toName", "").split(",")[0].strip()
        if to_name in texts and labels.get("name"):
            values = [lab.get("value") for lab in labels.iter("Label") if lab.get("value")]
            lower = {t.lower(): t for t in model_types}
            by_type = {}
            for lab in labels.iter("Label"):
                value = lab.get("value")
                if not value:
                    continue
                named = [p.strip() for p in (lab.get("predicted_values") or "").split(",") if p.strip()]
                for wanted in named or [value]:
                    model_type = lower.get(wanted.lower())
                    if model_type is not None:
                        by_type.setdefault(model_type, value)
            return LabelConfig(labels.get("name"), to_name, texts[to_name].lstrip("$"), values, by_type)
    raise LabelConfigError("the label config has no <Labels> control over a <Text> object")
