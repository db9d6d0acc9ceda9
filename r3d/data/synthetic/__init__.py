"""The embedded synthetic RGB-D anticipation benchmark, in two modes: streams that complement or repeat each other.

Each video is a sequence of (cue, response) pairs. A cue is a random (verb, noun), uniform over all V×N pairs; the
response that follows is ``rule(cue)``, a bijection on pairs (`response_of`, `RULE`: verb' = (verb + noun) mod V,
noun' = (noun + 2·verb) mod N). Only responses are annotated, so a response at t_s is anticipated from the window
``[t_s − τa − τo, t_s − τa]``, which lies inside its cue (cues last τa + τo + 0.5 … τa + τo + 1.5 s, responses
1.5 … 2.5 s). Since the rule is a bijection, anticipating the response means recognising the whole cue.

The scene (`render`): one disc over a textured, low-saturation background and a tilted depth plane (3.4–4.1 m).

- noun: the disc's colour (`NOUN_KEYS` / `NOUN_RGB`; same size and shading for every noun);
- verb: the disc's motion along the optical axis (`VERB_KEYS` / `VERB_MOTIONS`: push = away, pull = toward,
  tap = toward then away, toss = away then toward, shake = back and forth, hold = still). The camera is orthographic,
  so the disc never changes size in RGB; its centre depth is random per segment, so one depth frame does not give the
  verb away.

Modes (`MODES`, key ``synthetic.mode``):

- ``complementary`` (default): the scene as above, so RGB sees only the cue's noun and depth only its verb. A stream
  alone is left with V (RGB) or N (depth) equally likely responses: action top-1 is capped at 1/V and 1/N (25 % for
  the 4×4 default) while RGB + depth determine the response. A model cannot ignore a stream here, so it cannot show
  modality collapse.
- ``redundant``: each stream sees the whole cue, RGB easily and depth with more effort, the setting in which a fused
  model can learn RGB first and then leave depth unused. RGB adds the verb as the grey level of the disc's core
  (`verb_grey`); depth adds the noun as the silhouette of a flat body just behind the disc (`NOUN_SHAPES`), painted
  like the background so that RGB cannot see it. RGB then reads both classes from flat colours in every frame; depth
  needs the disc's motion across frames for the verb and a shape for the noun, and depth noise damages both.

Everything else is random and independent of the classes and of the mode: the background and plane per video, a
smooth lateral path of the disc per video, a per-frame brightness flicker. In complementary mode re-rendering a plan
with other nouns gives the same depth bytes and with other verbs the same RGB bytes; in both modes the redundant
cues take no random draws, so the two modes' frames of one plan differ only on the core (RGB) and the body (depth).
`check_rule` raises for V/N combinations where the rule is not a bijection (e.g. V = 2, N = 3).

Depth noise (`depth_noise` η, 0 = clean … 1 = heavy) is Kinect-like (`noise`): gaussian, depth-dependent
quantisation and holes. At η = 0 the depth is exact to the millimetre and has no holes.

`generate` writes a dataset folder (`dataset`), reusing one written with the same parameters; `render_recording`
writes one unannotated clip.
"""
from .clip import write_clip
from .dataset import (ANNOTATION_COLUMNS, GENERATOR, GENERATOR_VERSION, ensure_synthetic, generate,
                      read_synthetic_params)
from .modes import (BODY_GAP, CORE_RADIUS, DEFAULT_MODE, GREY_RANGE, MODES, NOUN_SHAPES, Mode, body_mask, get_mode,
                    verb_grey)
from .noise import EDGE_JUMP, HOLE_BLOBS, HOLE_EDGES, HOLE_PIXELS, NOISE_STD, QUANT_STEP, add_depth_noise
from .plan import CUE_MARGIN, RESPONSE_SECONDS, RenderedSegment, num_frames_of, plan_video, with_frames
from .recording import render_recording
from .render import (DEPTH_MAX, DEPTH_MIN, FLICKER, LATERAL, OBJECT_BULGE, OBJECT_RADIUS, PLANE_TILT, PLANE_Z,
                     SHAKE_PERIOD, SPEED, Z_FAR, Z_NEAR, render_frames)
from .rule import NOUN_KEYS, NOUN_RGB, RULE, VERB_KEYS, VERB_MOTIONS, check_rule, response_of

__all__ = [
    "ANNOTATION_COLUMNS", "BODY_GAP", "CORE_RADIUS", "CUE_MARGIN", "DEFAULT_MODE", "DEPTH_MAX", "DEPTH_MIN",
    "EDGE_JUMP", "FLICKER", "GENERATOR", "GENERATOR_VERSION", "GREY_RANGE", "HOLE_BLOBS", "HOLE_EDGES", "HOLE_PIXELS",
    "LATERAL", "MODES", "Mode", "NOISE_STD", "NOUN_KEYS", "NOUN_RGB", "NOUN_SHAPES", "OBJECT_BULGE", "OBJECT_RADIUS",
    "PLANE_TILT", "PLANE_Z", "QUANT_STEP", "RESPONSE_SECONDS", "RULE", "RenderedSegment", "SHAKE_PERIOD", "SPEED",
    "VERB_KEYS", "VERB_MOTIONS", "Z_FAR", "Z_NEAR", "add_depth_noise", "body_mask", "check_rule", "ensure_synthetic",
    "generate", "get_mode", "num_frames_of", "plan_video", "read_synthetic_params", "render_frames",
    "render_recording", "response_of", "verb_grey", "with_frames", "write_clip",
]
