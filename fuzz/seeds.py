#!/usr/bin/env python3
"""Writes a small seed corpus for fuzz_api.c into the folder named (fuzz/run does):
a few valid calls of every operation, encoded as its decoder reads them (see decode()
there)."""
import os
import random
import sys

EDGE = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 127, 128,
        129, 255, 256, 257, 300, 511, 512, 513, 1000, 1023, 1024, 1025, 1100, 2048, 3136,
        4096, 8192, 50176]
OPS = {'fold': 0, 'apply': 1, 'infer': 2, 'fwd': 3, 'bwd': 4, 'frozen': 5, 'weights': 6}
NROLES = [6, 4, 6, 8, 8, 4, 7]


def size(v):
    if 1 <= v <= 10:
        return [v - 1]
    if v in EDGE:
        return [150, EDGE.index(v)]
    assert 1 <= v <= 2048
    return [210, (v - 1) & 0xff, (v - 1) >> 8]


def strides(kind, p1=0, p2=0):
    # kind: None dense (NULL), 'pad', 'explicit', 'same' (as x / dy); a list is the
    # bytes themselves (240, 2, 0, 0, i: inner dense, batch huge_size's list[i])
    if isinstance(kind, list):
        return kind
    b = {None: 0, 'pad': 130, 'explicit': 190, 'same': 220}[kind]
    return [b, p1, p2]


# The activation: a byte (below 40: NULL; else its value mod 3 is the kind: 0 none,
# 1 ReLU, 2 clamp), then the clamp's bounds as indices into take_bound's list (0: 0.0,
# 1: 6.0).
ACT_NULL, ACT_NONE, ACT_RELU, ACT_CLAMP6 = (0, 0, 1), (42, 0, 1), (40, 0, 1), (41, 0, 1)


def case(op, n, c, s, layout=0, st=(None, None, None, None), place=None, eps=0, running=0,
         momentum=0, act=ACT_NULL, modes=None, isa=0, flags=0, fp=0, data=b''):
    out = [OPS[op], isa, flags] + size(n) + size(c) + size(s) + [layout, layout]
    for k in st:
        out += strides(*k) if isinstance(k, tuple) else strides(k)
    nr = NROLES[OPS[op]]
    out += place if place else [0] * nr
    out += [eps, running, momentum, 0] + list(act)
    modes = modes or [(1, 0)] * nr
    for m in modes:
        out += list(m)
    out += [fp]  # the caller's MXCSR: below 232 default, else FTZ, DAZ or both by fp % 3
    return bytes(out) + data


def main(outdir):
    rnd = random.Random(1)
    seeds = {
        'fold_c7': case('fold', 1, 7, 1),
        # eps -2^-149 under FTZ and DAZ: valid, as the library compares it (as -0)
        'fold_daz_subnormal_eps': case('fold', 1, 7, 1, eps=209, fp=233),
        'fold_c300_nulls': case('fold', 1, 300, 1, place=[190, 190, 0, 0, 0, 0]),
        'apply_nchw_2x3x5_relu': case('apply', 2, 3, 5, act=ACT_RELU),
        'apply_nhwc_padded_clamp': case('apply', 2, 17, 7, layout=1,
                                        st=(('pad', 3, 5), ('pad', 1, 2), None, None),
                                        act=ACT_CLAMP6),
        'apply_inplace': case('apply', 3, 9, 33, place=[0, 210, 0, 0],
                              st=(None, 'same', None, None)),
        # y == x with equal inner strides but batch strides one apart: an alias error
        'apply_inplace_batch_differs': case('apply', 2, 3, 5, place=[0, 210, 0, 0],
                                            st=(('pad', 0, 0), ('pad', 0, 1), None, None)),
        'infer_inplace_batch_differs': case('infer', 2, 3, 5, place=[0, 210, 0, 0, 0, 0],
                                            st=(('pad', 0, 0), ('pad', 0, 1), None, None)),
        # x's batch stride 2^62: its extent overflows PTRDIFF_MAX bytes
        'apply_batch_2p62': case('apply', 2, 3, 5, st=([240, 2, 0, 0, 0, 10], None, None,
                                                       None)),
        # streaming stores (1.2 MB of y): whole planes, then the last in quarters
        'apply_stream_planes': case('apply', 1, 6, 50176),
        'infer_nchw_misaligned': case('infer', 2, 64, 49, place=[101, 103, 0, 0, 0, 0],
                                      act=ACT_RELU),
        'infer_nhwc_c300': case('infer', 1, 300, 64, layout=1, act=ACT_NONE),
        'infer_spatial1': case('infer', 8, 33, 1),
        # over a pool: channel ranges over rows, cut on y's lines (y 3 floats past one)
        'infer_spatial1_ranges': case('infer', 40, 1024, 1, place=[0, 103, 0, 0, 0, 0]),
        # the same in place (a range run twice would then differ)
        'infer_spatial1_ranges_inplace': case('infer', 40, 1024, 1,
                                              place=[103, 210, 0, 0, 0, 0],
                                              st=(None, 'same', None, None)),
        'infer_spatial1_ranges_padded': case('infer', 48, 1100, 1,
                                             place=[0, 105, 0, 0, 0, 0],
                                             st=(None, ('pad', 0, 0x85), None, None)),
        'fwd_nchw_running': case('fwd', 2, 8, 49),
        'fwd_nhwc_c3_periodic': case('fwd', 2, 3, 100, layout=1, running=0, momentum=1),
        'fwd_nhwc_c1025_split': case('fwd', 2, 1025, 9, layout=1),
        # channel ranges cut on y's lines, with running statistics (updated once each)
        'fwd_nhwc_c1088_ranges': case('fwd', 2, 1088, 9, layout=1,
                                      place=[0, 103, 0, 0, 0, 0, 0, 0]),
        # NaN momentum: a bad value
        'fwd_nan_momentum': case('fwd', 2, 8, 49, momentum=203),
        'fwd_padded_inplace': case('fwd', 4, 5, 17, st=(('pad', 2, 3), 'same', None, None),
                                   place=[0, 210, 0, 0, 0, 0, 0, 0]),
        'fwd_cancelling': case('fwd', 8, 17, 33, layout=1, modes=[(5, 0)] * 8),
        # x = {2^-149, 0}: a subnormal mean, whose rounding to float the bound counts
        'fwd_subnormal_mean': case('fwd', 1, 1, 2, place=[0, 0, 190, 190, 0, 0, 0, 0],
                                   running=200, modes=[(2, 0)] + [(1, 0)] * 7,
                                   data=bytes([1, 0, 0, 0, 0, 0, 0, 0])),
        'fwd_nchw_spatial1_strided': case('fwd', 64, 20, 1,
                                          st=(('pad', 1, 4), None, None, None)),
        'bwd_nchw_all': case('bwd', 2, 9, 65),
        # save_invstd +inf, x 3, save_mean 0, dy 1: dgamma is +inf (the guide's rule)
        'bwd_infinite_invstd': case('bwd', 2, 1, 4, place=[0, 0, 0, 190, 0, 0, 0, 0],
                                    modes=[(6, 0), (6, 0), (1, 0), (1, 0), (6, 0), (2, 0),
                                           (1, 0), (1, 0)],
                                    data=bytes([6] * 8 + [4] * 8 + [3] +
                                               [0, 0, 0x80, 0x7f])),
        'bwd_nhwc_nodx': case('bwd', 4, 31, 20, layout=1, place=[0, 0, 190, 0, 0, 0, 0, 0]),
        'bwd_real_stats_padded': case('bwd', 3, 12, 40, flags=0x20,
                                      st=(('pad', 1, 1), None, ('pad', 2, 2),
                                          ('pad', 3, 3))),
        'bwd_inplace_dx_dy': case('bwd', 2, 300, 7, layout=1, flags=0x20,
                                  st=(None, None, None, 'same'),
                                  place=[0, 0, 210, 0, 0, 0, 0, 0]),
        'frozen_nchw': case('frozen', 2, 16, 30),
        'frozen_nhwc_inplace': case('frozen', 3, 40, 12, layout=1, place=[0, 210, 0, 0]),
        'weights_ocmajor': case('weights', 1, 16, 27),
        'weights_oclast_inplace_bias': case('weights', 1, 300, 9, layout=1,
                                            place=[0, 0, 210, 0, 0, 0, 0]),
        'weights_nobias': case('weights', 1, 5, 3, place=[0, 190, 0, 0, 0, 0, 0]),
    }
    os.makedirs(outdir, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(outdir, name), 'wb') as f:
            f.write(data + bytes(rnd.randrange(256) for _ in range(64)))


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'fuzz_api_seeds')
