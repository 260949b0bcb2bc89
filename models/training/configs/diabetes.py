"""diabetes-ml: Pima Indians Diabetes (mlbench::PimaIndiansDiabetes2, zeros recoded NA)."""
import numpy as np
from data import read_csv, column

LOINC = "http://loinc.org|"
CONFIG = {
    "condition": "diabetes",
    "title": "Diabetes risk in adult women (Pima Indians Diabetes data) - research-grade ML ensemble",
    "outcome": "Diabetes mellitus by WHO criteria (2-h post-load plasma glucose >= 200 mg/dL at a survey "
               "examination, or diagnosis found during routine care), as recorded by the NIDDK Pima study; "
               "Smith et al. (1988) describe the label as onset within 5 years of the examination.",
    "horizon": "5 years (per Smith et al. 1988; the UCI/mlbench documentation describes it only as 'tested positive')",
    "features": [
        {"name": "pregnancies", "display": "Number of pregnancies", "unit": "{#}", "required": False,
         "source": {"observation": {"codes": [LOINC + "11996-6"], "unit": "{#}"}}, "plausible": [0, 25], "col": "pregnant"},
        {"name": "glucose_2h", "display": "Plasma glucose 2 h after 75 g oral glucose", "unit": "mg/dL", "required": True,
         "source": {"observation": {"codes": [LOINC + "1518-0"], "unit": "mg/dL"}}, "plausible": [20, 600], "col": "glucose"},
        {"name": "diastolic_bp", "display": "Diastolic blood pressure", "unit": "mm[Hg]", "required": False,
         "source": {"observation": {"codes": [LOINC + "8462-4"], "unit": "mm[Hg]"}}, "plausible": [20, 150], "col": "pressure"},
        {"name": "bmi", "display": "Body mass index", "unit": "kg/m2", "required": True,
         "source": {"observation": {"codes": [LOINC + "39156-5"], "unit": "kg/m2"}}, "plausible": [10, 80], "col": "mass"},
        {"name": "age", "display": "Age", "unit": "a", "required": True,
         "source": {"age": "years"}, "plausible": [18, 110], "col": "age"},
    ],
    "ageFeature": "age", "sexFeature": None, "ageBands": [[21, 30], [30, 45], [45, 200]],
    "dataset": {
        "source": "Pima Indians Diabetes Database (National Institute of Diabetes and Digestive and Kidney Diseases), "
                  "as distributed in the R package mlbench (PimaIndiansDiabetes2: physiologically impossible zeros recoded to NA)",
        "citation": "Smith JW, Everhart JE, Dickson WC, Knowler WC, Johannes RS. Using the ADAP learning algorithm to forecast "
                    "the onset of diabetes mellitus. Proc Annu Symp Comput Appl Med Care 1988:261-5. Leisch F, Dimitriadou E. "
                    "mlbench: Machine Learning Benchmark Problems (R package).",
        "licence": "mlbench package GPL-2 (Debian copyright file); the underlying data are the public UCI Machine Learning Repository "
                   "copy of the NIDDK database (no separate licence stated by the donors)",
        "obtainedFrom": "Debian package r-cran-mlbench 2.1-3-1: /usr/lib/R/site-library/mlbench/data/PimaIndiansDiabetes2.rda",
        "collected": "Gila River Indian Community longitudinal study (NIDDK), examinations 1965-1980s; database donated 1990",
        "population": "768 women of Pima Indian heritage aged >= 21 years, Arizona, USA",
    },
    "intendedUse": "Research and method development: estimating the probability that an adult non-pregnant woman has or will "
                   "develop type 2 diabetes from a 2-h OGTT glucose, BMI, blood pressure, parity and age, as a decision-support "
                   "signal shown next to (not instead of) guideline-based diabetes screening.",
    "notForUse": "Diagnosis of diabetes (use HbA1c/fasting glucose/OGTT criteria); men; children; pregnant women; populations "
                 "other than the Pima training population without local validation; any automated decision.",
    "droppedPredictors": "triceps skinfold (rarely recorded in EHRs, 30% missing), 2-h serum insulin (49% missing, LOINC not certain), "
                         "diabetes pedigree function (a derived family-history score no FHIR record carries)",
}


def load():
    rows = read_csv("pima/PimaIndiansDiabetes2.csv")
    X = np.column_stack([column(rows, f["col"]) for f in CONFIG["features"]])
    y = np.array([1 if r["diabetes"] == "pos" else 0 for r in rows])
    return X, y, {"source rows": len(rows), "analysed": len(rows)}
