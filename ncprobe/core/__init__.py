"""The diagnostics core: statistics, decisions, metrics, geometry, anchors, MMD, the report.

It imports nothing from ``ncprobe.data``, ``models``, ``testbed``, ``training`` or ``plotting``
(``tests/test_layering.py`` enforces it). Modules, in the order data flows through them:

* :mod:`.geometry` — differentiable kernels (the one normaliser, ETF distances, simplex/nearest/near ETF);
* :mod:`.statistics`, :mod:`.decisions` — the streaming accumulators; :mod:`.inmemory` — the two-read path;
* :mod:`.prepared` — class geometry and classifier/text embeddings, prepared once;
* :mod:`.metrics`, :mod:`.crossmodal`, :mod:`.generalized` — one function per metric;
* :mod:`.catalog` — every metric as data; :mod:`.groups` — the head/medium/tail rule;
* :mod:`.measure`, :mod:`.report` — the front door and its labelled result;
* :mod:`.anchors`, :mod:`.mmd` — relative representations and MMD (Craft); :mod:`.synthetic` — demo data.

The public names are re-exported at the top level (``ncprobe.measure``, ``ncprobe.nc1``, …); this package
itself only documents the layout, so ``ncprobe.core.measure`` stays the module.
"""
