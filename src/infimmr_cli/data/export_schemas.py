"""Column layouts of the public exports `prepare` reads, as HF `datasets` writes them to parquet.

Shared by the test export builders and the CPU demo's data generator, so the schema is written down once.
"""

from __future__ import annotations

import pyarrow as pa

# HF `datasets` stores an Image feature in parquet as this struct.
IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


VIRL_SCHEMA = pa.schema([
    ("question", pa.string()), ("answer", pa.string()), ("PassRate_32BTrained", pa.float64()),
    ("PassRate_7BBase", pa.float64()), ("category", pa.string()), ("source", pa.string()), ("qid", pa.string()),
    ("image", pa.list_(pa.string())),
])


MATHVERSE_SCHEMA = pa.schema([
    ("sample_index", pa.string()), ("problem_index", pa.string()), ("problem_version", pa.string()),
    ("question", pa.string()), ("image", IMAGE_STRUCT), ("answer", pa.string()), ("question_type", pa.string()),
    ("metadata", pa.struct([("split", pa.string()), ("source", pa.string()), ("subject", pa.string()),
                            ("subfield", pa.string())])),
    ("query_wo", pa.string()), ("query_cot", pa.string()), ("question_for_eval", pa.string()),
])


MATHVISION_SCHEMA = pa.schema([
    ("id", pa.string()), ("question", pa.string()), ("options", pa.list_(pa.string())), ("image", pa.string()),
    ("decoded_image", IMAGE_STRUCT), ("answer", pa.string()), ("solution", pa.string()), ("level", pa.int64()),
    ("subject", pa.string()),
])


MATHVISTA_SCHEMA = pa.schema([
    ("pid", pa.string()), ("question", pa.string()), ("image", pa.string()), ("decoded_image", IMAGE_STRUCT),
    ("choices", pa.list_(pa.string())), ("unit", pa.string()), ("precision", pa.float64()), ("answer", pa.string()),
    ("question_type", pa.string()), ("answer_type", pa.string()),
    ("metadata", pa.struct([("category", pa.string()), ("context", pa.string()), ("grade", pa.string()),
                            ("img_height", pa.int64()), ("img_width", pa.int64()), ("language", pa.string()),
                            ("skills", pa.list_(pa.string())), ("source", pa.string()), ("split", pa.string()),
                            ("task", pa.string())])),
    ("query", pa.string()),
])


OLYMPIAD_SCHEMA = pa.schema(
    [("id", pa.int64()), ("question", pa.string()), ("solution", pa.list_(pa.string())),
     ("final_answer", pa.list_(pa.string())), ("context", pa.string())]
    + [(f"image_{k}", IMAGE_STRUCT) for k in range(1, 6)]
    + [("modality", pa.string()), ("difficulty", pa.string()), ("is_multiple_answer", pa.bool_()),
       ("unit", pa.string()), ("answer_type", pa.string()), ("error", pa.string()), ("question_type", pa.string()),
       ("subfield", pa.string()), ("subject", pa.string()), ("language", pa.string())])
