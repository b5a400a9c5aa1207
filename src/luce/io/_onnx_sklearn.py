"""ONNX of a scikit-learn Pipeline ending in a luce linear model: skl2onnx converts the scikit-learn
steps, and the luce estimator is registered with it as a custom converter that emits the nodes of
:func:`luce.io._onnx.linear_graph`.

This module imports skl2onnx and scikit-learn; it is imported only when a Pipeline is exported.

Serving convention: one input per raw column, shape ``(N, 1)``; strings as string tensors (a missing
string is ``""``: ONNX string tensors have no None), numbers as float tensors (a missing number is NaN).
"""

from __future__ import annotations

import copy

import numpy as np
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.common.data_types import (
    BooleanTensorType,
    DoubleTensorType,
    FloatTensorType,
    Int64TensorType,
    StringTensorType,
)
from sklearn.base import BaseEstimator, TransformerMixin

from ._describe import LinearModel
from ._onnx_text import check_text_exportable, register_text_column, text_options
from ._text import TEXT_STEPS

__all__ = ["pipeline_graph"]

_ML_OPSET = 3  # ai.onnx.ml operators (OneHotEncoder, Imputer, LabelEncoder) of onnxruntime >= 1.14


def _column_names(step, columns, names) -> list[str]:
    """A ColumnTransformer's column selection as names of the raw columns."""
    if isinstance(columns, str | int | np.integer):
        columns = [columns]
    columns = np.asarray(columns)
    if columns.dtype.kind == "b":
        return [str(n) for n in np.asarray(names)[columns]]
    if columns.dtype.kind in "iu":
        return [str(names[i]) for i in columns.tolist()]
    return [str(c) for c in columns.tolist()]


def _string_columns(step, names: list[str]) -> set[str]:
    """The raw columns (of ``names``, the columns ``step`` receives) that ``step`` holds as strings."""
    kind = type(step).__name__
    if kind == "Pipeline":
        return _string_columns(step.steps[0][1], names)
    if kind == "ColumnTransformer":
        found = set()
        for _, trans, columns in step.transformers_:
            if isinstance(trans, str):
                continue
            found |= _string_columns(trans, _column_names(step, columns, names))
        return found
    if kind in ("OneHotEncoder", "OrdinalEncoder"):
        return {n for n, c in zip(names, step.categories_, strict=True) if c.dtype.kind in "OUS"}
    if kind == "SimpleImputer" and step.statistics_.dtype.kind == "O":
        return set(names)
    if kind in ("TextColumn", *TEXT_STEPS):  # documents
        return set(names)
    return set()


def _used_columns(step, names: list[str]) -> set[str]:
    """The raw columns ``step`` reads (a ColumnTransformer drops some; other steps read all)."""
    if type(step).__name__ != "ColumnTransformer":
        return set(names)
    used = set()
    for _, trans, columns in step.transformers_:
        if not (isinstance(trans, str) and trans == "drop"):
            used |= set(_column_names(step, columns, names))
    return used


def _input_types(pipe, input_types) -> dict[str, str]:
    """``{raw column: "string" or "number"}`` for the columns the pipeline reads, in the order of the
    training table. Columns it drops are no inputs: their type is unknown, and nothing needs them."""
    first = pipe.steps[0][1]
    names = [str(n) for n in first.feature_names_in_.tolist()]
    strings = _string_columns(first, names)
    used = _used_columns(first, names)
    types = {n: "string" if n in strings else "number" for n in names if n in used}
    if input_types is not None:
        if not isinstance(input_types, dict):
            raise TypeError(f"input_types must be a dict, got {type(input_types).__name__}")
        unknown = sorted(set(input_types) - set(types))
        if unknown:
            raise ValueError(f"input_types names columns the model does not read: {unknown}")
        bad = {k: v for k, v in input_types.items() if v not in ("string", "number")}
        if bad:
            raise ValueError(f"input_types values must be 'string' or 'number', got {bad}")
        types.update(input_types)
    return types


def _array_input(pipe, number, input_types):
    """The one input ``X`` of a pipeline fitted on an array (no column names): all numbers or all
    strings, shape ``(N, n_features)``."""
    if input_types is not None:
        raise ValueError("input_types names columns: it applies to pipelines fitted on DataFrames only")
    first = pipe.steps[0][1]
    if type(first).__name__ in ("TextColumn", "TfidfVectorizer", "CountVectorizer", "HashingVectorizer"):
        return [("X", StringTensorType([None, 1]))]  # one document per row
    n = first.n_features_in_
    strings = _string_columns(first, [str(i) for i in range(n)])
    if strings and len(strings) < n:
        raise TypeError(
            "this pipeline was fitted on an array that mixes string and number columns, which one ONNX "
            "tensor cannot hold; fit it on a DataFrame to export one input per column"
        )
    return [("X", (StringTensorType if strings else number)([None, n]))]


def _is_nan(value) -> bool:
    return isinstance(value, float) and value != value


def _servable(pipe, np_dtype):
    """A copy of ``pipe`` ready for skl2onnx: string imputers treat ``""`` as missing (the ONNX form of
    None); in a float64 graph, number imputers become :func:`_nan_imputer` (onnxruntime's Imputer
    operator has float32 kernels only)."""
    pipe = copy.deepcopy(pipe)
    stack = [(pipe, None, None)]  # (step, its container, its position there)
    while stack:
        step, owner, where = stack.pop()
        kind = type(step).__name__
        if kind == "Pipeline":
            stack.extend((s, step.steps, i) for i, (_, s) in enumerate(step.steps))
        elif kind == "ColumnTransformer":
            stack.extend((t, step.transformers_, i) for i, (_, t, _) in enumerate(step.transformers_))
        elif kind == "SimpleImputer" and step.statistics_.dtype.kind == "O":
            if step.missing_values is None or _is_nan(step.missing_values):
                step.missing_values = ""
        elif kind == "SimpleImputer" and np_dtype == np.float64 and _is_nan(step.missing_values):
            if np.isnan(step.statistics_.astype(np.float64)).any() and not step.keep_empty_features:
                raise TypeError("an imputer drops all-missing columns; refit with keep_empty_features=True")
            entry = list(owner[where])
            entry[1] = _nan_imputer(step.statistics_)
            owner[where] = tuple(entry)
    return pipe


class _NanImputer(TransformerMixin, BaseEstimator):
    """A number imputer's statistics, which skl2onnx converts to ``Where(IsNaN(X), statistics, X)``."""

    def __init__(self, statistics=None):
        self.statistics = statistics


def _nan_imputer_shapes(operator):
    n = len(operator.raw_operator.statistics)
    operator.outputs[0].type = operator.inputs[0].type.__class__([None, n])


def _convert_nan_imputer(scope, operator, container):
    values = np.asarray(operator.raw_operator.statistics, dtype=np.float64)
    stats = scope.get_unique_variable_name("luce_statistics")
    mask = scope.get_unique_variable_name("luce_missing")
    x = operator.inputs[0].full_name
    container.add_initializer(stats, TensorProto.DOUBLE, [values.size], values.tolist())
    container.add_node("IsNaN", [x], [mask], op_version=13, name=scope.get_unique_operator_name("luce_isnan"))
    container.add_node(
        "Where",
        [mask, stats, x],
        [operator.outputs[0].full_name],
        op_version=16,
        name=scope.get_unique_operator_name("luce_impute"),
    )


def _nan_imputer(statistics):
    return _NanImputer(np.asarray(statistics, dtype=np.float64))


_LABEL_TYPES = {
    TensorProto.STRING: StringTensorType,
    TensorProto.INT64: Int64TensorType,
    TensorProto.DOUBLE: DoubleTensorType,
    TensorProto.BOOL: BooleanTensorType,
}


def _graph_dtype(variable):
    return np.float32 if isinstance(variable.type, FloatTensorType) else np.float64


def _parse_linear(scope, model, inputs, custom_parsers=None):
    """Declare the luce estimator's operator and its two outputs, ``label`` and ``probabilities``."""
    from ._onnx import describe, linear_graph

    np_dtype = _graph_dtype(inputs[0])
    _, _, label_type, label_shape, n_proba = linear_graph(describe(model), np_dtype)
    operator = scope.declare_local_operator(f"Luce{type(model).__name__}", model)
    operator.inputs = inputs
    label = scope.declare_local_variable("label", _LABEL_TYPES[label_type]([None, *label_shape[1:]]))
    proba_type = FloatTensorType if np_dtype == np.float32 else DoubleTensorType
    proba = scope.declare_local_variable("probabilities", proba_type([None, n_proba]))
    operator.outputs.extend([label, proba])
    return [label, proba]


def _linear_shapes(operator):  # the parser declares them
    pass


def _convert_linear(scope, operator, container):
    """Copy in the nodes of :func:`linear_graph` under names unique in the whole graph."""
    from ._onnx import describe, linear_graph

    d = describe(operator.raw_operator)
    nodes, initializers, *_ = linear_graph(d, _graph_dtype(operator.inputs[0]))
    names = {
        "X": operator.inputs[0].full_name,
        "label": operator.outputs[0].full_name,
        "probabilities": operator.outputs[1].full_name,
    }

    def name(local):
        if local not in names:
            names[local] = scope.get_unique_variable_name(f"luce_{local}")
        return names[local]

    for t in initializers:
        content = list(t.string_data) if t.data_type == TensorProto.STRING else t
        container.add_initializer(name(t.name), t.data_type, list(t.dims), content)
    for node in nodes:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        container.add_node(
            node.op_type,
            [name(i) for i in node.input],
            [name(o) for o in node.output],
            name=scope.get_unique_operator_name(f"luce_{node.name}"),
            op_version=13,
            **attrs,
        )


_REGISTERED: set[type] = set()


def _register(cls) -> None:
    """Teach skl2onnx ``cls`` (once per class): luce's parser and converter."""
    if cls in _REGISTERED:
        return
    if not _REGISTERED:
        update_registered_converter(_NanImputer, "LuceNanImputer", _nan_imputer_shapes, _convert_nan_imputer)
        register_text_column()
    update_registered_converter(
        cls, f"Luce{cls.__name__}", _linear_shapes, _convert_linear, parser=_parse_linear
    )
    _REGISTERED.add(cls)


def pipeline_graph(pipe, d: LinearModel, np_dtype, opset: int, input_types):
    """``(onnx model, raw input columns)`` of a fitted Pipeline whose last step ``d`` describes."""
    number = FloatTensorType if np_dtype == np.float32 else DoubleTensorType
    if getattr(pipe.steps[0][1], "feature_names_in_", None) is None:
        initial = _array_input(pipe, number, input_types)
        types = {"X": "string" if initial[0][1].__class__ is StringTensorType else "number"}
    else:
        types = _input_types(pipe, input_types)
        initial = [
            (n, StringTensorType([None, 1]) if t == "string" else number([None, 1])) for n, t in types.items()
        ]
    _register(type(pipe.steps[-1][1]))
    check_text_exportable(pipe)
    servable = _servable(pipe, np_dtype)
    options = text_options(servable)
    if options:
        # With any options given, skl2onnx gives a classifier without options its ZipMap option, which
        # luce's converter does not take: the luce estimator is named with none.
        options[id(servable.steps[-1][1])] = {}
    try:
        onnx_model = convert_sklearn(
            servable,
            initial_types=initial,
            target_opset={"": opset, "ai.onnx.ml": _ML_OPSET},
            options=options or None,
        )
    except (RuntimeError, NotImplementedError, TypeError, ValueError) as e:
        raise TypeError(f"skl2onnx cannot convert this pipeline: {e}") from None
    outputs = [o.name for o in onnx_model.graph.output]
    if outputs != ["label", "probabilities"]:
        raise ValueError(f"a raw column is named like an output ({outputs}); rename it before exporting")
    return onnx_model, list(types)
