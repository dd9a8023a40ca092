"""Static weight inspection: format safety, headers, metadata, and the findings they produce.

Nothing in this package loads a tensor or unpickles a byte. `inspect_path` is the entry point;
`describe_model` reads metadata alone; the scanners are exported for callers (intake) that need
one check on one file.
"""

from weighbridge.inspection.formats import FileFormat, MalformedFile, detect_format
from weighbridge.inspection.gguf_header import GGUFHeader, read_gguf_header
from weighbridge.inspection.inspect import InspectedFile, Inspection, inspect_path
from weighbridge.inspection.metadata import ModelMetadata, describe_model
from weighbridge.inspection.pickle_scan import classify, scan_pickle_file, scan_zip_file
from weighbridge.inspection.safetensors_header import SafetensorsHeader, read_safetensors_header

__all__ = [
    "FileFormat",
    "GGUFHeader",
    "InspectedFile",
    "Inspection",
    "MalformedFile",
    "ModelMetadata",
    "SafetensorsHeader",
    "classify",
    "describe_model",
    "detect_format",
    "inspect_path",
    "read_gguf_header",
    "read_safetensors_header",
    "scan_pickle_file",
    "scan_zip_file",
]
