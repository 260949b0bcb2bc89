"""stroke-ml: 5-year incident stroke in the survival::nafld cohort."""
from configs._nafld_common import DATASET, NOTES, features, build

KEYS = ["age", "male", "sbp", "bmi", "hdl", "diabetes", "htn", "afib", "chd"]
CONFIG = {
    "condition": "stroke",
    "title": "5-year first stroke (Rochester NAFLD cohort) - research-grade ML ensemble",
    "outcome": "First recorded stroke (type not distinguished in the source data) within 5 years of the index date, in adults "
               "with no stroke recorded before the index date.",
    "horizon": "5 years",
    "features": features(KEYS),
    "ageFeature": "age", "sexFeature": "male", "ageBands": [[0, 45], [45, 65], [65, 200]],
    "dataset": DATASET, "cohortNotes": NOTES,
    "intendedUse": "Research: ranking adults without prior stroke by 5-year risk of a first stroke, as context next to "
                   "guideline tools (e.g. CHA2DS2-VASc for atrial fibrillation).",
    "notForUse": "Anticoagulation decisions in atrial fibrillation (use CHA2DS2-VASc/HAS-BLED); people with prior stroke/TIA; "
                 "acute stroke assessment; populations unlike Olmsted County without validation; any automated decision.",
    "droppedPredictors": "smoking (recorded for only ~4% of subjects, and the runtime would read an absent smoking Condition as 0 rather than missing), total cholesterol and diastolic BP (corrupted in the packaged data, see cohort notes), FIB-4, weight/height",
}


def load():
    return build(KEYS, outcome_events={"stroke"}, exclude_prevalent=["stroke"])
