"""ONNX export of linear softmax and sigmoid models, alone or at the end of a scikit-learn Pipeline.

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

A Pipeline's scikit-learn steps are converted by skl2onnx (:mod:`luce.io._onnx_sklearn`), with the
luce estimator at its end registered as a custom converter that emits these same nodes.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ._atomic import atomic_write_bytes
from ._container import _luce_version
from ._describe import LinearModel, describe_linear
from ._whitelist import _class_entry

__all__ = ["export_onnx"]

_OPSET = 17  # Softmax's single-axis semantics need >= 13; 17 is served by every current runtime.
_IR_VERSION = 8  # the IR version that goes with opset 17
_LINKS = {"linear_softmax": "softmax", "linear_sigmoid": "sigmoid"}


def describe(model) -> LinearModel:
    """The export description of a luce linear model; TypeError for anything else."""
    entry = _class_entry(type(model))
    if entry is None or entry[1] not in _LINKS:
        raise TypeError(
            "model must be a linear softmax or sigmoid model such as luce.SoftmaxRegression or "
            f"luce.SigmoidRegression (alone or at the end of a Pipeline), got {type(model).__name__}"
        )
    return describe_linear(model, entry[0], _LINKS[entry[1]])


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


def linear_graph(d: LinearModel, np_dtype):
    """The nodes from the input ``X`` to the outputs ``label`` and ``probabilities``:
    ``(nodes, initializers, label element type, label shape, number of probability columns)``."""
    from onnx import TensorProto, helper, numpy_helper

    label_type, label_values = _classes_tensor(d.classes)
    # Temperature folded into the weights in float64: one rounding instead of a Div on every logit.
    weights = numpy_helper.from_array(np.ascontiguousarray((d.coef / d.temperature).T, dtype=np_dtype), "W")
    bias = numpy_helper.from_array((d.intercept / d.temperature).astype(np_dtype), "b")
    if label_type == TensorProto.STRING:
        labels = helper.make_tensor("classes", TensorProto.STRING, [d.classes.size], list(label_values))
    else:
        labels = numpy_helper.from_array(label_values, "classes")
    axis1 = numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1")
    initializers = [weights, bias, labels, axis1]
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["scores"], name="matmul"),
        helper.make_node("Add", ["scores", "b"], ["logits"], name="add_intercept"),
    ]
    # The arg-max is taken on the logits (not the rounded probabilities): ties are the model's own.
    argmax_label = [
        helper.make_node("ArgMax", ["logits"], ["index"], name="argmax", axis=1, keepdims=0),
        helper.make_node("Gather", ["classes", "index"], ["label"], name="label", axis=0),
    ]
    label_shape, n_proba = ["N"], d.classes.size
    if d.mode == "softmax":
        nodes += [helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1)]
        nodes += argmax_label
    elif d.mode == "one-vs-rest":  # normalised sigmoids, the largest logit
        nodes += [
            helper.make_node("Sigmoid", ["logits"], ["sig"], name="sigmoid"),
            helper.make_node("ReduceSum", ["sig", "axis1"], ["sig_sum"], name="sum", keepdims=1),
            helper.make_node("Div", ["sig", "sig_sum"], ["probabilities"], name="normalise"),
        ]
        nodes += argmax_label
    else:
        # The threshold on the probability as a threshold on the logit (exact for any t, as predict).
        t = d.threshold
        initializers.append(numpy_helper.from_array((np.log(t) - np.log1p(-t)).astype(np_dtype), "cut"))
        above = helper.make_node("Greater", ["logits", "cut"], ["above"], name="above_threshold")
        if d.mode == "multilabel":  # per label: σ(z), and the indicator in the dtype of the training y
            nodes += [
                helper.make_node("Sigmoid", ["logits"], ["probabilities"], name="sigmoid"),
                above,
                helper.make_node("Cast", ["above"], ["label"], name="indicator", to=label_type),
            ]
            label_shape, n_proba = ["N", d.coef.shape[0]], d.coef.shape[0]
        else:  # binary: [σ(-z), σ(z)], each computed directly; classes[z > logit(t)]
            nodes += [
                helper.make_node("Neg", ["logits"], ["neg_logits"], name="negate"),
                helper.make_node("Sigmoid", ["neg_logits"], ["sig_neg"], name="sigmoid_negative"),
                helper.make_node("Sigmoid", ["logits"], ["sig"], name="sigmoid"),
                helper.make_node("Concat", ["sig_neg", "sig"], ["probabilities"], name="proba", axis=1),
                above,
                helper.make_node("Cast", ["above"], ["above_int"], name="as_index", to=TensorProto.INT64),
                helper.make_node("Squeeze", ["above_int", "axis1"], ["index"], name="squeeze"),
                helper.make_node("Gather", ["classes", "index"], ["label"], name="label", axis=0),
            ]
    used = {i for node in nodes for i in node.input}  # a multi-label model has no use for classes
    initializers = [t for t in initializers if t.name in used]
    return nodes, initializers, label_type, label_shape, n_proba


def export_onnx(model, path, *, dtype="float32", opset: int = _OPSET, input_types=None) -> Path:
    r"""Export a fitted linear softmax or sigmoid model, or a scikit-learn Pipeline that ends in one, as
    an ONNX graph.

    .. math:: \mathrm{probabilities} = \mathrm{softmax}\Big(\frac{X W^\top + b}{T}\Big), \quad
              \mathrm{label} = \mathrm{classes}[\arg\max_k (X W^\top + b)_k]

    for a softmax model; a sigmoid model's graph computes its ``predict_proba`` and ``predict`` (per-label
    sigmoids and thresholds, binary, or one-vs-rest). Two outputs: ``label``, shape ``(N,)`` (int64,
    double, bool or string, following ``classes_``; a multi-label model's 0/1 indicators,
    ``(N, n_labels)``), and ``probabilities``, shape ``(N, n_classes)``.

    A bare estimator's graph has one input ``X`` of shape ``(N, n_features)``. A Pipeline fitted on a
    DataFrame has **one input per raw column it reads** (columns its ColumnTransformer drops are no
    inputs), named after it, of shape ``(N, 1)``: a string tensor for a column the pipeline encodes as
    categories, a ``dtype`` tensor for a number column (integers included); a missing number is NaN, a
    missing string the empty string ``""``; one fitted on an array has one input ``X``. Its scikit-learn
    steps are converted by skl2onnx. Its ``metadata_props`` hold ``classes`` (a JSON list),
    ``classes_dtype``, ``feature_names`` (JSON, when known), ``temperature``, ``estimator``,
    ``luce_version`` and, for a Pipeline, ``input_columns`` and ``input_types`` (JSON). The file is
    written atomically.

    Parameters
    ----------
    model : SoftmaxRegression, SigmoidRegression or sklearn.pipeline.Pipeline
        A fitted linear model (``coef_`` of shape ``(n_classes, n_features)``, ``intercept_``
        ``(n_classes,)``, ``classes_`` ``(n_classes,)``, optional ``temperature_``), or a fitted Pipeline
        of the steps :func:`luce.save` accepts ending in one.
    path : str or os.PathLike
        Destination ``.onnx`` file; its folder must exist.
    dtype : {"float32", "float64"}, default "float32"
        Element type of the numeric inputs, the weights and the probabilities. float32 matches luce's
        float64 probabilities to about 1e-6; float64 to rounding.
    opset : int, default 17
        The ONNX operator set (at least 13).
    input_types : dict of str to {"string", "number"}, optional
        Pipelines only: the input type of raw columns, overriding what is read from the fitted
        encoders and imputers (a column they hold strings for is ``"string"``, any other ``"number"``).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If ``model`` is not a linear softmax or sigmoid model (or a Pipeline ending in one), or its
        classes mix types an ONNX tensor cannot hold, or a pipeline step cannot be converted.
    ValueError
        If ``model`` is not fitted or its arrays are inconsistent or not finite, or ``input_types``
        names a column the model does not have.

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

    A pipeline on a raw table takes one input per column:

    >>> import pandas as pd
    >>> from sklearn.compose import ColumnTransformer
    >>> from sklearn.impute import SimpleImputer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import OneHotEncoder, StandardScaler
    >>> table = pd.DataFrame({"width": [1.0, 2.5, np.nan, 4.0], "color": ["red", "blue", None, "red"]})
    >>> pre = ColumnTransformer([
    ...     ("width", make_pipeline(SimpleImputer(), StandardScaler()), ["width"]),
    ...     ("color", make_pipeline(SimpleImputer(strategy="most_frequent"),
    ...                             OneHotEncoder(handle_unknown="ignore")), ["color"])])
    >>> pipe = make_pipeline(pre, luce.SoftmaxRegression()).fit(table, ["a", "b", "b", "a"])
    >>> path = luce.export_onnx(pipe, os.path.join(tempfile.mkdtemp(), "table.onnx"))
    >>> session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    >>> [(i.name, i.type) for i in session.get_inputs()]
    [('width', 'tensor(float)'), ('color', 'tensor(string)')]
    >>> label, proba = session.run(None, {"width": np.array([[np.nan], [3.0]], dtype=np.float32),
    ...                                   "color": np.array([[""], ["green"]], dtype=object)})
    >>> rows = pd.DataFrame({"width": [np.nan, 3.0], "color": [None, "green"]})
    >>> label.tolist() == pipe.predict(rows).tolist()
    True

    References
    ----------
    ONNX operators: https://onnx.ai/onnx/operators/ (MatMul, Add, Softmax-13, ArgMax, Gather; Sigmoid,
    Greater, Cast, ReduceSum-13, Concat, Squeeze-13); skl2onnx: https://onnx.ai/sklearn-onnx/.
    """
    import onnx
    from onnx import helper

    np_dtype = np.dtype(dtype)
    if np_dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 13:
        raise ValueError(f"opset must be an int >= 13, got {opset!r}")
    from ._sklearn import step_name

    if step_name(type(model)) == "sklearn.Pipeline":
        try:
            from ._onnx_sklearn import pipeline_graph
        except ModuleNotFoundError as e:
            if e.name != "skl2onnx":
                raise
            raise ImportError("exporting a Pipeline needs skl2onnx: pip install 'luce[io]'") from None

        d = describe(model.steps[-1][1])
        onnx_model, inputs = pipeline_graph(model, d, np_dtype, opset, input_types)
        names = inputs  # the raw columns, in order
    else:
        if input_types is not None:
            raise ValueError("input_types applies to Pipelines only; a bare estimator has one input X")
        d = describe(model)
        onnx_model = _estimator_graph(d, np_dtype, opset)
        inputs = None
        names = getattr(model, "feature_names_in_", None)
    props = {
        "estimator": d.estimator,
        "luce_version": _luce_version(),
        "classes": json.dumps([_json_label(c) for c in d.classes.tolist()]),
        "classes_dtype": d.classes.dtype.str,
        "temperature": repr(d.temperature),
        "n_features": str(d.n_features),
    }
    if inputs is not None:
        props["input_columns"] = json.dumps(inputs)
        props["input_types"] = json.dumps(
            {
                i.name: "string" if i.type.tensor_type.elem_type == onnx.TensorProto.STRING else "number"
                for i in onnx_model.graph.input
            }
        )
    if names is not None:
        props["feature_names"] = json.dumps([str(n) for n in np.asarray(names).tolist()])
    helper.set_model_props(onnx_model, props)
    onnx.checker.check_model(onnx_model, full_check=True)
    return atomic_write_bytes(os.fspath(path), onnx_model.SerializeToString())


def _estimator_graph(d: LinearModel, np_dtype, opset):
    import onnx
    from onnx import helper

    nodes, initializers, label_type, label_shape, n_proba = linear_graph(d, np_dtype)
    elem = helper.np_dtype_to_tensor_dtype(np_dtype)
    graph = helper.make_graph(
        nodes,
        f"luce_{d.estimator}",
        inputs=[helper.make_tensor_value_info("X", elem, ["N", d.n_features])],
        outputs=[
            helper.make_tensor_value_info("label", label_type, label_shape),
            helper.make_tensor_value_info("probabilities", elem, ["N", n_proba]),
        ],
        initializer=initializers,
    )
    return helper.make_model(
        graph,
        producer_name="luce",
        producer_version=_luce_version(),
        opset_imports=[helper.make_opsetid("", opset)],
        ir_version=_IR_VERSION if opset <= _OPSET else onnx.IR_VERSION,
        doc_string=f"luce {d.estimator}: "
        + (
            "probabilities = softmax((X @ coef.T + intercept) / temperature)"
            if d.mode == "softmax"
            else "probabilities from sigmoid(X @ coef.T + intercept), as predict_proba"
        ),
    )


def _json_label(c):
    if isinstance(c, bytes):
        return c.decode("utf-8")
    if isinstance(c, float) and not math.isfinite(c):
        return repr(c)
    return c
