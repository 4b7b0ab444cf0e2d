"""Bring models trained outside bisep into bisep model folders: the paper authors' released separator
(:mod:`bisep.importers.authors`) and LAION-CLAP's own checkpoints (:mod:`bisep.importers.laion_clap`)."""
