"""Tiny helper to write a notebook from a list of ("md"|"code", source) cells (used to author notebooks/)."""
import json, sys

def write(path, cells):
    nb = {
        "cells": [dict(c, id=f"cell-{i}") for i, c in enumerate([
            {"cell_type": "markdown", "metadata": {}, "source": src.strip("\n").splitlines(keepends=True)}
            if kind == "md" else
            {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
             "source": src.strip("\n").splitlines(keepends=True)}
            for kind, src in cells
        ])],
        "metadata": {
            "kernelspec": {"display_name": "Deno", "language": "typescript", "name": "deno"},
            "language_info": {"name": "typescript", "file_extension": ".ts", "mimetype": "text/x.typescript",
                              "codemirror_mode": "typescript", "nbconvert_exporter": "script",
                              "pygments_lexer": "typescript"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    with open(path, "w") as f:
        json.dump(nb, f, indent=1, ensure_ascii=False)
        f.write("\n")
