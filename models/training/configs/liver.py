"""liver-ml: Mayo Clinic primary biliary cholangitis (survival::pbc), 5-year death or transplant."""
import numpy as np
from data import read_csv, column

LOINC = "http://loinc.org|"
HORIZON = 1826
CONFIG = {
    "condition": "liver",
    "title": "5-year death or liver transplant in primary biliary cholangitis (Mayo PBC data) - research-grade ML ensemble",
    "outcome": "Death or liver transplantation within 5 years, in patients with established primary biliary cholangitis "
               "(PBC). Prognostic model for a diseased population, not a model of developing liver disease.",
    "horizon": "5 years",
    "features": [
        {"name": "age", "display": "Age", "unit": "a", "required": True, "source": {"age": "years"}, "plausible": [18, 110], "col": "age"},
        {"name": "male", "display": "Male sex", "unit": "1", "required": True, "source": {"sex": "male"}, "plausible": [0, 1], "col": "male"},
        {"name": "bilirubin", "display": "Bilirubin, total (serum)", "unit": "mg/dL", "required": True,
         "source": {"observation": {"codes": [LOINC + "1975-2"], "unit": "mg/dL"}}, "plausible": [0.1, 50], "col": "bili"},
        {"name": "albumin", "display": "Albumin (serum)", "unit": "g/dL", "required": True,
         "source": {"observation": {"codes": [LOINC + "1751-7"], "unit": "g/dL"}}, "plausible": [1, 6], "col": "albumin"},
        {"name": "ast", "display": "Aspartate aminotransferase (serum)", "unit": "U/L", "required": False,
         "source": {"observation": {"codes": [LOINC + "1920-8"], "unit": "U/L"}}, "plausible": [5, 3000], "col": "ast"},
        {"name": "alk_phos", "display": "Alkaline phosphatase (serum)", "unit": "U/L", "required": False,
         "source": {"observation": {"codes": [LOINC + "6768-6"], "unit": "U/L"}}, "plausible": [10, 20000], "col": "alk.phos"},
        {"name": "platelets", "display": "Platelet count (blood)", "unit": "10*3/uL", "required": False,
         "source": {"observation": {"codes": [LOINC + "777-3", LOINC + "26515-7"], "unit": "10*3/uL"}}, "plausible": [5, 1500], "col": "platelet"},
        {"name": "prothrombin_time", "display": "Prothrombin time", "unit": "s", "required": False,
         "source": {"observation": {"codes": [LOINC + "5902-2"], "unit": "s"}}, "plausible": [8, 60], "col": "protime"},
        {"name": "cholesterol", "display": "Cholesterol, total (serum)", "unit": "mg/dL", "required": False,
         "source": {"observation": {"codes": [LOINC + "2093-3"], "unit": "mg/dL"}}, "plausible": [50, 2000], "col": "chol"},
    ],
    "ageFeature": "age", "sexFeature": "male", "ageBands": [[0, 45], [45, 60], [60, 200]],
    "dataset": {
        "source": "Mayo Clinic trial in primary biliary cirrhosis/cholangitis (D-penicillamine vs placebo, 312 randomised + 106 "
                  "consenting non-randomised patients), as distributed in the R package survival (dataset pbc)",
        "citation": "Dickson ER, Grambsch PM, Fleming TR, Fisher LD, Langworthy A. Prognosis in primary biliary cirrhosis: model for "
                    "decision making. Hepatology 1989;10:1-7. Therneau TM, Grambsch PM. Modeling Survival Data: Extending the Cox "
                    "Model. Springer 2000. Therneau T. survival: Survival Analysis (R package).",
        "licence": "survival package LGPL-2+/GPL-2 (Debian copyright: GPL-2); data published with the package and in Fleming & Harrington (1991)",
        "obtainedFrom": "Debian package r-cran-survival 3.5-3-1: /usr/lib/R/library/survival/data/Rdata.rdb (object pbc)",
        "collected": "Referred to Mayo Clinic 1974-1984; follow-up to July 1986",
        "population": "418 patients with PBC (89% women) referred to Mayo Clinic",
    },
    "intendedUse": "Research: estimating 5-year risk of death or transplant for an adult with an established PBC diagnosis from "
                   "routine liver-panel results, as an adjunct to validated PBC scores (Mayo risk score, GLOBE, UK-PBC).",
    "notForUse": "Anyone without PBC (including other liver diseases or screening of the general population); patients on "
                 "ursodeoxycholic acid/obeticholic acid era treatment without recalibration; transplant listing decisions; "
                 "any automated decision.",
    "extraLimitations": [
        "Pre-ursodeoxycholic-acid era trial population (1974-1984); modern PBC prognosis is better, so absolute risks are likely overestimated.",
        "The survival package documents AST as 'U/ml'; the values (26-457) are consistent with U/L, which is assumed.",
        "Complete follow-up for 5 years was required: 89 patients censored alive before 5 years were excluded, which may bias risks upward.",
    ],
    "droppedPredictors": "ascites, hepatomegaly, spiders, oedema (clinical signs, missing for the 106 non-randomised patients), "
                         "urine copper, triglycerides, histologic stage (biopsy), treatment arm",
}


def load():
    rows = read_csv("pbc/pbc.csv")
    for r in rows:
        r["male"] = "1" if r["sex"] == "m" else "0"
    time = column(rows, "time")
    status = column(rows, "status")  # 0 censored, 1 transplant, 2 dead
    event = (status > 0) & (time <= HORIZON)
    known = event | (time > HORIZON) | (status > 0)
    X = np.column_stack([column(rows, f["col"]) for f in CONFIG["features"]])
    return X[known], event[known].astype(int), {
        "source rows": len(rows), "excludedCensoredBefore5y": int((~known).sum()), "analysed": int(known.sum())}
