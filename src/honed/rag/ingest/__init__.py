"""Getting documents in: loading files (confined to the folders named), chunking, importing test
collections."""
