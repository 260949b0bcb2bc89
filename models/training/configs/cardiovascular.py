"""cardiovascular-ml: 5-year incident MI / ischaemic heart disease / stroke in the survival::nafld cohort."""
from configs._nafld_common import DATASET, NOTES, features, build

KEYS = ["age", "male", "sbp", "bmi", "hdl", "diabetes", "htn", "dyslip", "nafld"]
CONFIG = {
    "condition": "cardiovascular",
    "title": "5-year atherosclerotic cardiovascular events (Rochester NAFLD cohort) - research-grade ML ensemble",
    "outcome": "First recorded myocardial infarction, angina/ischaemic heart disease, or stroke within 5 years of the index date, "
               "in adults without any of these (or heart failure) recorded before the index date.",
    "horizon": "5 years",
    "features": features(KEYS),
    "ageFeature": "age", "sexFeature": "male", "ageBands": [[0, 45], [45, 65], [65, 200]],
    "dataset": DATASET, "cohortNotes": NOTES,
    "intendedUse": "Research: ranking adults without known cardiovascular disease by short-term (5-year) risk of a first "
                   "atherosclerotic event, shown next to guideline scores (PCE/PREVENT) that carelens computes.",
    "notForUse": "Replacing guideline 10-year risk equations for statin/antihypertensive decisions; people with established "
                 "cardiovascular disease; populations unlike Olmsted County (predominantly white, Minnesota) without validation; "
                 "any automated decision.",
    "droppedPredictors": "smoking (recorded for only ~4% of subjects, and the runtime would read an absent smoking Condition as 0 rather than missing), total cholesterol and diastolic BP (corrupted in the packaged data, see cohort notes), FIB-4 (only measured "
                         "in NAFLD cases), weight/height (BMI used instead)",
}


def load():
    return build(KEYS, outcome_events={"MI", "ang/isc", "stroke"}, exclude_prevalent=["MI", "ang/isc", "stroke", "heart failure"])
