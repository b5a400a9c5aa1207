"""ONNX export of linear softmax and sigmoid models: the graph any ONNX runtime can serve.

Softmax models (``SoftmaxRegression``): ``MatMul -> Add -> {Softmax, ArgMax -> Gather}``. The temperature
is folded into the weights in float64 before rounding them to the graph's dtype (``W = coef_.T / T``,
``b = intercept_ / T``), so the graph computes ``softmax((X @ coef_.T + intercept_) / T)`` with one
rounding of the weights. The predicted label is ``classes[argmax(logits)]``: a Gather over a constant
tensor of the classes, which works for integer, float, boolean and string labels alike (no
LabelEncoder operator needed).

Sigmoid models (``SigmoidRegression``): ``MatMul -> Add`` then, as ``predict``/``predict_proba`` do,
per-label sigmoids and ``logits > logit(threshold)`` (multi-label), ``[σ(-z), σ(z)]`` and
``classes[z > logit(threshold)]`` (binary), or normalised sigmoids and ``classes[argmax]``
(one-vs-rest).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ._atomic import atomic_write_bytes
from ._format import _class_entry, _luce_version

__all__ = ["export_onnx"]

_OPSET = 17  # Softmax's single-axis semantics need >= 13; 17 is served by every current runtime.
_IR_VERSION = 8  # the IR version that goes with opset 17


def _classes_tensor(classes: np.ndarray):
    """``(onnx element type, values)`` for the classes; one ONNX type for all of them."""
    from onnx import TensorProto

    kind = classes.dtype.kind
    if kind == "O":
        types = {type(c.item() if isinstance(c, np.generic) else c) for c in classes}
        if types <= {str}:
            kind = "U"
        elif types <= {bool}:
            kind = "b"
        elif types <= {int}:
            kind = "i"
        elif types <= {int, float}:
            kind = "f"
        else:
            names = ", ".join(sorted(t.__name__ for t in types))
            raise TypeError(f"an ONNX tensor holds one type, but classes_ mixes {names}; relabel the classes")
    if kind in "US":
        values = [c.decode("utf-8") if isinstance(c, bytes) else str(c) for c in classes.tolist()]
        return TensorProto.STRING, np.array([v.encode("utf-8") for v in values], dtype=object)
    if kind == "b":
        return TensorProto.BOOL, classes.astype(bool)
    if kind in "iu":
        if kind == "u" and classes.size and int(classes.max()) > np.iinfo(np.int64).max:
            raise TypeError("classes_ above 2**63 - 1 do not fit ONNX int64 labels")
        return TensorProto.INT64, classes.astype(np.int64)
    if kind == "f":
        return TensorProto.DOUBLE, classes.astype(np.float64)
    raise TypeError(f"classes_ of dtype {classes.dtype} cannot be ONNX labels")


def export_onnx(model, path, *, dtype="float32", opset: int = _OPSET) -> Path:
    r"""Export a fitted linear softmax or sigmoid model (``SoftmaxRegression``, ``SigmoidRegression``)
    as an ONNX graph.

    .. math:: \mathrm{probabilities} = \mathrm{softmax}\Big(\frac{X W^\top + b}{T}\Big), \quad
              \mathrm{label} = \mathrm{classes}[\arg\max_k (X W^\top + b)_k]

    for a softmax model; a sigmoid model's graph computes its ``predict_proba`` and ``predict`` (per-label
    sigmoids and thresholds, binary, or one-vs-rest). The graph has one input ``X`` of shape
    ``(N, n_features)`` and two outputs: ``label``, shape ``(N,)`` (int64, double, bool or string,
    following ``classes_``; a multi-label model's 0/1 indicators, ``(N, n_labels)``), and
    ``probabilities``, shape ``(N, n_classes)``. Its ``metadata_props`` hold ``classes`` (a JSON
    list), ``classes_dtype``, ``feature_names`` (a JSON list, when the model was fit on named
    columns), ``temperature``, ``estimator`` and ``luce_version``. The file is written atomically.

    Parameters
    ----------
    model : SoftmaxRegression or SigmoidRegression
        A fitted linear model: ``coef_`` of shape ``(n_classes, n_features)``, ``intercept_``
        ``(n_classes,)``, ``classes_`` ``(n_classes,)``, optional ``temperature_`` (softmax).
    path : str or os.PathLike
        Destination ``.onnx`` file; its folder must exist.
    dtype : {"float32", "float64"}, default "float32"
        Element type of ``X``, the weights and the probabilities. float32 matches luce's float64
        probabilities to about 1e-6; float64 to rounding.
    opset : int, default 17
        The ONNX operator set (at least 13).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If ``model`` is not a linear softmax or sigmoid model, or its classes mix types an ONNX tensor
        cannot hold.
    ValueError
        If ``model`` is not fitted or its arrays are inconsistent or not finite.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> from sklearn.datasets import load_iris
    >>> import luce
    >>> X, y = load_iris(return_X_y=True)
    >>> names = np.array(["setosa", "versicolor", "virginica"])[y]
    >>> model = luce.SoftmaxRegression(reg_strength=1e-2).fit(X, names)
    >>> path = luce.export_onnx(model, os.path.join(tempfile.mkdtemp(), "iris.onnx"))
    >>> session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    >>> label, proba = session.run(None, {"X": X[[0, 60, 120]].astype(np.float32)})
    >>> label
    array(['setosa', 'versicolor', 'virginica'], dtype=object)
    >>> bool(np.allclose(proba, model.predict_proba(X[[0, 60, 120]]), atol=1e-5))
    True

    References
    ----------
    ONNX operators: https://onnx.ai/onnx/operators/ (MatMul, Add, Softmax-13, ArgMax, Gather; Sigmoid,
    Greater, Cast, ReduceSum-13, Concat, Squeeze-13).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    entry = _class_entry(type(model))
    if entry is None or entry[1] not in ("linear_softmax", "linear_sigmoid"):
        raise TypeError(
            "model must be a linear softmax or sigmoid model such as luce.SoftmaxRegression or "
            f"luce.SigmoidRegression, got {type(model).__name__}"
        )
    name, kind = entry
    np_dtype = np.dtype(dtype)
    if np_dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 13:
        raise ValueError(f"opset must be an int >= 13, got {opset!r}")
    missing = [a for a in ("coef_", "intercept_", "classes_") if not hasattr(model, a)]
    if missing:
        raise ValueError(f"model is not fitted (no {', '.join(missing)}); call fit first")
    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    classes = np.asarray(model.classes_)
    temperature = float(getattr(model, "temperature_", 1.0))
    binary_sigmoid = kind == "linear_sigmoid" and not model.multilabel_ and coef.shape[:1] == (1,)
    n_labels = 2 if binary_sigmoid else coef.shape[0]  # one weight vector for the two classes
    if coef.ndim != 2 or intercept.shape != (coef.shape[0],) or classes.shape != (n_labels,):
        raise ValueError(
            f"model arrays are inconsistent: coef_ {coef.shape}, intercept_ {intercept.shape}, "
            f"classes_ {classes.shape}; expected (n_classes, n_features), (n_classes,), (n_classes,)"
        )
    if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        raise ValueError("model coef_/intercept_ contain NaN or inf; refit the model")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"model temperature_ must be finite and > 0, got {temperature}")
    n_classes, n_features = coef.shape
    elem = helper.np_dtype_to_tensor_dtype(np_dtype)
    label_type, label_values = _classes_tensor(classes)

    # Temperature folded into the weights in float64: one rounding instead of a Div on every logit.
    weights = numpy_helper.from_array(np.ascontiguousarray((coef / temperature).T, dtype=np_dtype), "W")
    bias = numpy_helper.from_array((intercept / temperature).astype(np_dtype), "b")
    if label_type == TensorProto.STRING:
        labels = helper.make_tensor("classes", TensorProto.STRING, [classes.size], list(label_values))
    else:
        labels = numpy_helper.from_array(label_values, "classes")
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["scores"], name="matmul"),
        helper.make_node("Add", ["scores", "b"], ["logits"], name="add_intercept"),
    ]
    initializer = [weights, bias, labels]
    label_shape, n_proba = ["N"], classes.size
    if kind == "linear_softmax":
        nodes += [
            helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
            # ArgMax on the logits (not the rounded probabilities): ties are the model's own ties.
            helper.make_node("ArgMax", ["logits"], ["index"], name="argmax", axis=1, keepdims=0),
            helper.make_node("Gather", ["classes", "index"], ["label"], name="label", axis=0),
        ]
    else:
        sig_nodes, sig_init, label_type, label_shape = _sigmoid_nodes(model, n_classes, np_dtype, label_type)
        nodes += sig_nodes
        initializer += sig_init
        n_proba = n_classes if model.multilabel_ else classes.size
    used = {i for node in nodes for i in node.input}  # a multi-label model has no use for classes
    initializer = [t for t in initializer if t.name in used]
    graph = helper.make_graph(
        nodes,
        f"luce_{name}",
        inputs=[helper.make_tensor_value_info("X", elem, ["N", n_features])],
        outputs=[
            helper.make_tensor_value_info("label", label_type, label_shape),
            helper.make_tensor_value_info("probabilities", elem, ["N", n_proba]),
        ],
        initializer=initializer,
    )
    onnx_model = helper.make_model(
        graph,
        producer_name="luce",
        producer_version=_luce_version(),
        opset_imports=[helper.make_opsetid("", opset)],
        ir_version=_IR_VERSION if opset <= _OPSET else onnx.IR_VERSION,
        doc_string=f"luce {name}: "
        + (
            "probabilities = softmax((X @ coef.T + intercept) / temperature)"
            if kind == "linear_softmax"
            else "probabilities from sigmoid(X @ coef.T + intercept), as predict_proba"
        ),
    )
    props = {
        "estimator": name,
        "luce_version": _luce_version(),
        "classes": json.dumps([_json_label(c) for c in classes.tolist()]),
        "classes_dtype": classes.dtype.str,
        "temperature": repr(temperature),
        "n_features": str(n_features),
    }
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        props["feature_names"] = json.dumps([str(n) for n in np.asarray(names).tolist()])
    helper.set_model_props(onnx_model, props)
    onnx.checker.check_model(onnx_model, full_check=True)
    return atomic_write_bytes(os.fspath(path), onnx_model.SerializeToString())


def _sigmoid_nodes(model, n_outputs, np_dtype, label_type):
    """The nodes after ``logits`` for a SigmoidRegression: ``(nodes, initializers, label type, label
    shape)``, following its ``predict`` and ``predict_proba`` in each of its three modes."""
    from onnx import TensorProto, helper, numpy_helper

    from ..models._sigmoid import _logit

    sigmoid = helper.make_node("Sigmoid", ["logits"], ["sig"], name="sigmoid")
    axis1 = numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1")
    if not model.multilabel_ and n_outputs > 1:  # one-vs-rest: normalised sigmoids, the largest logit
        nodes = [
            sigmoid,
            helper.make_node("ReduceSum", ["sig", "axis1"], ["sig_sum"], name="sum", keepdims=1),
            helper.make_node("Div", ["sig", "sig_sum"], ["probabilities"], name="normalise"),
            helper.make_node("ArgMax", ["logits"], ["index"], name="argmax", axis=1, keepdims=0),
            helper.make_node("Gather", ["classes", "index"], ["label"], name="label", axis=0),
        ]
        return nodes, [axis1], label_type, ["N"]
    # The threshold on the probability, as a threshold on the logit (exact for any t; as predict).
    t = model._per_output(
        model.decision_threshold, "decision_threshold", n_outputs, low=0.0, high=1.0, default=0.5
    )
    cut = numpy_helper.from_array(_logit(t).astype(np_dtype), "logit_threshold")
    above = helper.make_node("Greater", ["logits", "logit_threshold"], ["above"], name="above_threshold")
    if model.multilabel_:  # per label: σ(z), and the indicator in the dtype of the training y
        indicator_type, _ = _classes_tensor(np.asarray(model.classes_))
        nodes = [
            helper.make_node("Sigmoid", ["logits"], ["probabilities"], name="sigmoid"),
            above,
            helper.make_node("Cast", ["above"], ["label"], name="indicator", to=indicator_type),
        ]
        return nodes, [cut], indicator_type, ["N", n_outputs]
    nodes = [  # binary: [σ(-z), σ(z)], each computed directly; classes[z > logit(t)]
        helper.make_node("Neg", ["logits"], ["neg_logits"], name="negate"),
        helper.make_node("Sigmoid", ["neg_logits"], ["sig_neg"], name="sigmoid_negative"),
        sigmoid,
        helper.make_node("Concat", ["sig_neg", "sig"], ["probabilities"], name="proba", axis=1),
        above,
        helper.make_node("Cast", ["above"], ["above_int"], name="as_index", to=TensorProto.INT64),
        helper.make_node("Squeeze", ["above_int", "axis1"], ["index"], name="squeeze"),
        helper.make_node("Gather", ["classes", "index"], ["label"], name="label", axis=0),
    ]
    return nodes, [cut, axis1], label_type, ["N"]


def _json_label(c):
    if isinstance(c, bytes):
        return c.decode("utf-8")
    if isinstance(c, float) and not math.isfinite(c):
        return repr(c)
    return c
