"""The class descriptions of benchmark ``ncprobe-embedded-v2``: three sentences per class.

Under the benchmark's primary protocol (``"descriptions"``) a class's text is the mean of its
L2-normalised description embeddings, re-normalised; under the second protocol (``"names"``) it is
the class name in the single template ``"a photo of a {}."``.

How they were written (the rule, stated in ``data_cards/embedded_benchmark.md`` and committed with
this file before any build that uses them was evaluated):

1. Three English sentences per class, written once from general knowledge of what the object looks
   like (a garment's dictionary definition, a digit's common handwritten strokes), never from
   benchmark images, model outputs, confusions or accuracies. One rule for base and novel classes.
2. Garments: the first sentence names the class; all sentences state only visible attributes (where
   it is worn or how it is carried, sleeves, collar, closure, laces, legs, sole and heel, whether it
   covers the ankle, straps and gaps, handles, overall shape, material or use). The absence of an
   attribute may be stated. No sentence names another benchmark class or phrases a class by its
   resemblance or contrast to another one.
3. Digits: the digit's own name, value or numeral never appears (number words only count strokes).
   Sentences describe the strokes of the common handwritten form: loops, straight lines (vertical,
   slanted), horizontal bars, curves and the side they open to, and where each sits.
4. Fixed; never tuned against test accuracy. Changing a sentence makes a new benchmark version.

These are the descriptive captions of the feasibility experiment on this testbed (which reports them
as fixed before any of its runs), checked against the rule and copied verbatim with one exception
that the rule forced: digit one's "one straight stroke ..." became "a single straight stroke ..."
(the digit's own name may not appear).
"""

from __future__ import annotations

__all__ = ["DESCRIPTIONS"]

#: Class name → its three descriptions (benchmark order: base classes first).
DESCRIPTIONS: dict[str, tuple[str, str, str]] = {
    # --- base garments
    "shirt": (
        "a shirt with a collar and buttons down the front, worn on the upper body",
        "a button-up shirt with sleeves, worn on the upper body",
        "a collared top with sleeves and a row of buttons",
    ),
    "coat": (
        "a coat with long sleeves and a front opening with buttons or a zipper, worn on the upper body",
        "a long-sleeved outer jacket worn over the upper body",
        "a heavy coat with long sleeves and a closed front",
    ),
    "dress": (
        "a one-piece dress that covers the body and widens towards the bottom",
        "a long dress without sleeves or with short sleeves",
        "a dress, a single garment from the shoulders to the knees",
    ),
    "sneaker": (
        "a sneaker, a low shoe with laces and a flat rubber sole",
        "a low sports shoe with laces, seen from the side",
        "a low shoe with a flat sole that does not cover the ankle",
    ),
    "bag": (
        "a bag with a handle or a shoulder strap, a rectangular container",
        "a handbag with handles on top",
        "a bag for carrying things, not worn on the body",
    ),
    # --- base digits
    "digit zero": (
        "a handwritten digit with one large closed loop",
        "a single big oval loop, no straight lines",
        "a tall round ring with a hole in the middle",
    ),
    "digit one": (
        "a handwritten digit that is a single straight vertical line",
        "a single straight stroke from the top to the bottom, no loops",
        "a single thin slanted line",
    ),
    "digit two": (
        "a handwritten digit with a curve at the top, a diagonal line and a horizontal bar at the bottom",
        "a hook at the top and a flat horizontal bar at the bottom",
        "a curved stroke at the top going down diagonally to a bar at the bottom, no loops",
    ),
    "digit three": (
        "a handwritten digit with two curves open to the left, one at the top and one at the bottom",
        "two bumps on the right side stacked vertically, no closed loops",
        "a curve at the top and a curve at the bottom, both open to the left",
    ),
    "digit four": (
        "a handwritten digit with a vertical line on the right, a horizontal bar in the middle and a "
        "diagonal line at the top left",
        "an open triangle at the top above a straight vertical stem",
        "a horizontal crossbar in the middle crossing a vertical line",
    ),
    # --- novel garments
    "t-shirt": (
        "a t-shirt with short sleeves and no collar, worn on the upper body",
        "a short-sleeved top without buttons",
        "a simple top with short sleeves",
    ),
    "pullover": (
        "a pullover sweater with long sleeves and no buttons, worn on the upper body",
        "a knitted sweater with long sleeves",
        "a long-sleeved top pulled on over the head",
    ),
    "trouser": (
        "trousers with two long legs, worn on the lower body",
        "a pair of long pants",
        "trousers, two straight legs side by side",
    ),
    "sandal": (
        "a sandal, an open low shoe made of thin straps with a flat sole",
        "a low open shoe with straps and gaps, it does not cover the ankle",
        "a summer sandal made of straps",
    ),
    "ankle boot": (
        "an ankle boot, a shoe that covers the ankle, with a heel",
        "a high boot covering the ankle",
        "a boot with a heel and a high top",
    ),
    # --- novel digits
    "digit five": (
        "a handwritten digit with a horizontal bar at the top, a short vertical line on the left and a "
        "curve at the bottom open to the left",
        "a flat bar at the top, a short stem on the left and a round bump at the bottom",
        "a curve at the bottom open to the left, below a short vertical line and a top bar",
    ),
    "digit six": (
        "a handwritten digit with a closed loop at the bottom and a curved stroke at the top",
        "a small loop at the bottom with a long curve rising to the top",
        "a curved line coming down from the top into a closed loop at the bottom",
    ),
    "digit seven": (
        "a handwritten digit with a horizontal bar at the top and a long diagonal line going down",
        "a flat bar at the top and a straight slanted stem, no loops",
        "a top bar with a diagonal line below it",
    ),
    "digit eight": (
        "a handwritten digit with two closed loops, one at the top and one at the bottom",
        "two small loops stacked vertically",
        "a loop above another loop, crossing in the middle",
    ),
    "digit nine": (
        "a handwritten digit with a closed loop at the top and a straight vertical line at the bottom",
        "a small loop at the top with a straight stem going down",
        "a round loop at the top and a vertical line below it",
    ),
}
