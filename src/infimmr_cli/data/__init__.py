"""Data in and out: the record contract, one reader per public export, gold parsing, images, the record's chat prompt."""
