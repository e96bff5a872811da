"""Every place where ScaleSim changes SGLang behaviour, as one table of hook specifications."""
