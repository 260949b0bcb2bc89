"""thyroid-ml: thyroid gland data (Coomans et al.), as mclust::thyroid (UCI 'new-thyroid')."""
import numpy as np
from data import read_csv, column

LOINC = "http://loinc.org|"
CONFIG = {
    "condition": "thyroid",
    "title": "Thyroid dysfunction (hypo- or hyperthyroidism) from a thyroid function panel - research-grade ML ensemble",
    "outcome": "Clinical diagnosis of thyroid dysfunction (hypothyroidism or hyperthyroidism, vs. euthyroid) at the time of "
               "testing, as assigned by the data donors using all available clinical information. Cross-sectional.",
    "horizon": "cross-sectional",
    "features": [
        {"name": "t3_resin_uptake", "display": "T3 resin uptake", "unit": "%", "required": False,
         "source": {"observation": {"codes": [LOINC + "3050-0"], "unit": "%"}}, "plausible": [10, 200], "col": "RT3U"},
        {"name": "t4_total", "display": "Thyroxine (T4), total (serum)", "unit": "ug/dL", "required": True,
         "source": {"observation": {"codes": [LOINC + "3026-2"], "unit": "ug/dL"}}, "plausible": [0, 40], "col": "T4"},
        {"name": "t3_total", "display": "Triiodothyronine (T3), total (serum)", "unit": "ng/mL", "required": False,
         "source": {"observation": {"codes": [LOINC + "3053-6"], "unit": "ng/mL"}}, "plausible": [0, 15], "col": "T3"},
        {"name": "tsh", "display": "Thyrotropin (TSH), basal (serum)", "unit": "m[IU]/L", "required": True,
         "source": {"observation": {"codes": [LOINC + "3016-3", LOINC + "11580-8"], "unit": "m[IU]/L"}}, "plausible": [0, 200], "col": "TSH"},
    ],
    "ageFeature": None, "sexFeature": None, "ageBands": [],
    "dataset": {
        "source": "Thyroid gland data of Coomans et al. (UCI Machine Learning Repository 'new-thyroid', donated by S. Aeberhard), "
                  "as distributed in the R package mclust (dataset thyroid)",
        "citation": "Coomans D, Broeckaert I, Jonckheer M, Massart DL. Comparison of multivariate discriminant techniques for "
                    "clinical data - application to the thyroid functional state. Methods Inf Med 1983;22:93-101. Scrucca L, Fop M, "
                    "Murphy TB, Raftery AE. mclust 5. R Journal 2016;8:289-317.",
        "licence": "mclust package GPL-2+ (Debian copyright file); UCI copy of the data, no separate licence stated by the donors",
        "obtainedFrom": "Debian package r-cran-mclust 6.0.0-1: /usr/lib/R/site-library/mclust/data/Rdata.rdb (object thyroid)",
        "collected": "Before 1983 (Belgium); exact dates not documented",
        "population": "215 patients referred for thyroid function testing (150 euthyroid, 35 hyper-, 30 hypothyroid); age and sex not recorded",
    },
    "intendedUse": "Research and software testing: flagging a thyroid function panel whose pattern resembles thyroid dysfunction.",
    "notForUse": "Diagnosis (use the laboratory reference intervals and clinical assessment); free-T4-based panels (the model uses "
                 "total T4/T3 and T3 resin uptake); pregnancy, critical illness, drugs affecting binding proteins; any automated decision.",
    "extraLimitations": [
        "Thyroid dysfunction is two-sided (hypo: high TSH/low T4; hyper: low TSH/high T4); the LR member is linear in the raw "
        "values and cannot represent this, so it is much weaker than the GBT member.",
        "The GBT member separates the 43 test cases perfectly (AUROC 1.0, calibration slope unstable); with 13 test events this "
        "is not evidence of real-world accuracy. The label was assigned with knowledge of these same tests (incorporation bias).",
        "Unit of T3 in the source data is not documented; ng/mL is assumed from the value range (euthyroid median 1.7).",
    ],
    "droppedPredictors": "DTSH (maximal TSH rise after 200 ug TRH injection: a dynamic test no routine FHIR record carries)",
}


def load():
    rows = read_csv("thyroid/thyroid.csv")
    X = np.column_stack([column(rows, f["col"]) for f in CONFIG["features"]])
    y = np.array([0 if r["Diagnosis"] == "Normal" else 1 for r in rows])
    return X, y, {"source rows": len(rows), "analysed": len(rows)}
