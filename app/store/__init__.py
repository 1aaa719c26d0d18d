"""The model store on disk: `base/<name>/` (HF-format base or merged models), `adapters/<name>/<version>/`
(app.adapters reads them) and bundles of other stages. Everything in it is published the same way:
built in a hidden folder beside its final place, then renamed (app.runtime.atomic)."""
