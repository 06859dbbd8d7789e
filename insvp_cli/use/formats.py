"""The file formats ``insvp predict --out`` writes, known without torch: the command line checks ``--out`` against
them before it loads a model (:func:`insvp_cli.common.paths.check_output_file`)."""

# file suffix -> the writer's format name
PREDICTION_FORMATS = {".csv": "csv", ".jsonl": "jsonl"}
