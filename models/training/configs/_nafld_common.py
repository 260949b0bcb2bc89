"""Shared feature definitions for models built on the survival::nafld Rochester cohort."""
LOINC = "http://loinc.org|"
SCT = "http://snomed.info/sct|"
ICD = "http://hl7.org/fhir/sid/icd-10-cm|"


def cond(*codes):
    return {"condition": {"codes": list(codes)}}


FEATURES = {
    "age": {"name": "age", "display": "Age", "unit": "a", "required": True, "source": {"age": "years"}, "plausible": [18, 110], "col": "age"},
    "male": {"name": "male", "display": "Male sex", "unit": "1", "required": True, "source": {"sex": "male"}, "plausible": [0, 1], "col": "male"},
    "sbp": {"name": "systolic_bp", "display": "Systolic blood pressure", "unit": "mm[Hg]", "required": False,
            "source": {"observation": {"codes": [LOINC + "8480-6"], "unit": "mm[Hg]"}}, "plausible": [60, 260], "col": "sbp"},
    "bmi": {"name": "bmi", "display": "Body mass index", "unit": "kg/m2", "required": False,
            "source": {"observation": {"codes": [LOINC + "39156-5"], "unit": "kg/m2"}}, "plausible": [12, 80], "col": "bmi"},
    "hdl": {"name": "hdl_cholesterol", "display": "HDL cholesterol", "unit": "mg/dL", "required": False,
            "source": {"observation": {"codes": [LOINC + "2085-9"], "unit": "mg/dL"}}, "plausible": [10, 150], "col": "hdl"},
    "smoke": {"name": "smoker", "display": "Smoking (current or former, as recorded)", "unit": "1", "required": False,
              "source": cond(SCT + "77176002", SCT + "65568007", SCT + "8517006", ICD + "F17.210", ICD + "F17.200", ICD + "Z72.0", ICD + "Z87.891"),
              "plausible": [0, 1], "col": "smoke"},
    "diabetes": {"name": "diabetes", "display": "Diabetes mellitus (diagnosed before index)", "unit": "1", "required": False,
                 "source": cond(SCT + "73211009", SCT + "44054006", SCT + "46635009", ICD + "E11.9", ICD + "E11.65", ICD + "E10.9"),
                 "plausible": [0, 1], "col": "prev_diabetes"},
    "htn": {"name": "hypertension", "display": "Hypertension (diagnosed before index)", "unit": "1", "required": False,
            "source": cond(SCT + "38341003", SCT + "59621000", ICD + "I10"), "plausible": [0, 1], "col": "prev_htn"},
    "dyslip": {"name": "dyslipidemia", "display": "Dyslipidaemia (diagnosed before index)", "unit": "1", "required": False,
               "source": cond(SCT + "370992007", SCT + "55822004", SCT + "13644009", ICD + "E78.5", ICD + "E78.00", ICD + "E78.2"),
               "plausible": [0, 1], "col": "prev_dyslipidemia"},
    "nafld": {"name": "nafld", "display": "Non-alcoholic fatty liver disease (diagnosed at/before index)", "unit": "1", "required": False,
              "source": cond(SCT + "197321007", ICD + "K76.0"), "plausible": [0, 1], "col": "prev_nafld"},
    "afib": {"name": "atrial_fibrillation", "display": "Atrial fibrillation (diagnosed before index)", "unit": "1", "required": False,
             "source": cond(SCT + "49436004", ICD + "I48.91", ICD + "I48.0", ICD + "I48.11", ICD + "I48.19", ICD + "I48.20"),
             "plausible": [0, 1], "col": "prev_afib"},
    "chd": {"name": "coronary_heart_disease", "display": "Coronary heart disease / prior MI (before index)", "unit": "1", "required": False,
            "source": cond(SCT + "53741008", SCT + "414545008", SCT + "22298006", SCT + "194828000", ICD + "I25.10", ICD + "I25.2", ICD + "I21.9", ICD + "I20.9"),
            "plausible": [0, 1], "col": "prev_chd"},
}

DATASET = {
    "source": "Rochester Epidemiology Project NAFLD population cohort (all adult NAFLD diagnoses 1997-2014 in Olmsted County, "
              "Minnesota, plus up to 4 age/sex-matched controls each; 90% random sample, dates replaced by days from index), "
              "as distributed in the R package survival (datasets nafld1, nafld2, nafld3)",
    "citation": "Allen AM, Therneau TM, Larson JJ, Coward A, Somers VK, Kamath PS. Nonalcoholic fatty liver disease incidence and "
                "impact on metabolic burden and death: a 20 year-community study. Hepatology 2018;67:1726-36. Therneau T. survival: "
                "Survival Analysis (R package).",
    "licence": "survival package LGPL-2+/GPL-2 (Debian copyright: GPL-2); de-identified data released by the authors with the package",
    "obtainedFrom": "Debian package r-cran-survival 3.5-3-1: /usr/lib/R/library/survival/data/Rdata.rdb (objects nafld1, nafld2, nafld3)",
    "collected": "Index dates 1997-2014, follow-up to about 2017 (absolute dates removed by the data owners)",
    "population": "Adults in Olmsted County, Minnesota, USA: NAFLD cases and matched controls (so NAFLD is over-represented, ~20%)",
}

NOTES = ("Baseline = index date (NAFLD diagnosis or matched control's index). Labs/vitals: latest value within 3 years before "
         "or on the index date. In survival 3.5-3 the nafld2 'chol' rows carry the same values as 'hdl' and 'dbp' the same as 'sbp' "
         "(identical distributions), so total cholesterol and diastolic BP could not be used. Subjects censored alive before 5 years "
         "without the outcome were excluded; deaths without the outcome count as non-events (competing risk not modelled).")


def features(keys):
    return [dict(FEATURES[k]) for k in keys]


def build(keys, outcome_events, exclude_prevalent):
    import numpy as np
    from data import nafld_cohort
    c = nafld_cohort(outcome_events, exclude_prevalent)
    c["prev_chd"] = np.maximum(c["prev_MI"], c["prev_ang/isc"])
    X = np.column_stack([c[FEATURES[k]["col"]] for k in keys])
    return X, c["y"], c["flow"]
