"""The configuration schema, defined once: typed pydantic models with units, ranges and defaults.

Two vocabularies, one set of types:

* :class:`RunConfig` — one ``gpukpm`` job (``gpukpm dos|moments|kspace|torques-run CONFIG.yaml``);
* :class:`PipelineConfig` — the Snakemake pipeline (``workflow/Snakefile``), which
  :mod:`gpukpm.run.pipeline` maps onto one :class:`RunConfig` per job.

Every object is closed (an unknown key is an error naming it); a model section is a
discriminated union on ``name`` whose parameters are generated from the model dataclasses
of :mod:`gpukpm.models` (their defaults, units and sign rules).  :func:`validate_run` and
:func:`validate_pipeline` return plain mappings with the defaults filled in and raise
:class:`~gpukpm.errors.ConfigError` with one line naming the key path; :func:`json_schema`
exports the JSON Schema (for documentation and editors).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import (AfterValidator, AllowInfNan, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Strict, Tag,
                      TypeAdapter, ValidationError, create_model, model_validator)

from annotated_types import Ge, Gt

from gpukpm.response import kernels
from gpukpm.errors import ConfigError
from gpukpm.engine.estimators import ESTIMATORS
from gpukpm.models.hamiltonians import MODELS

__all__ = ["RunConfig", "PipelineConfig", "validate_run", "validate_pipeline", "json_schema", "format_error",
           "validate_value", "Energies", "Realisations", "OPERATORS", "PARTS"]

OPERATORS = ("sx", "sy", "sz", "jx", "jy")
PARTS = ("total", "sea", "surface")


# --------------------------------------------------------------------------- scalar types
def _plain_scalar(value):
    """NumPy scalars as Python numbers (configurations built in code may hold them); bools stay bools."""
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _typed(kind, **limits):
    """``kind`` (int, float or bool) typed strictly (no "3" for 3, no bool for a number; floats finite), with
    ``ge``/``gt`` limits; NumPy scalars accepted (the before-validator goes last: it runs first and leaves
    the limits in the JSON Schema)."""
    marks = [Strict()] + ([AllowInfNan(False)] if kind is float else [])
    marks += [Ge(limits["ge"])] if "ge" in limits else []
    marks += [Gt(limits["gt"])] if "gt" in limits else []
    return Annotated[tuple([kind] + marks + [BeforeValidator(_plain_scalar)])]


Int, Float, Bool = _typed(int), _typed(float), _typed(bool)
PositiveInt, NonNegativeInt, AtLeastTwoInt = _typed(int, ge=1), _typed(int, ge=0), _typed(int, ge=2)
PositiveFloat, NonNegativeFloat = _typed(float, gt=0), _typed(float, ge=0)
Operator = Literal[OPERATORS]
Part = Literal[PARTS]
Kernel = Literal[tuple(kernels.KERNELS)]
Backend = Literal["auto", "cpu", "gpu"]
Trace = Union[Literal["exact"], PositiveInt]


def _one_or_list(value):
    """A single name is a one-element list (``left: sx`` = ``left: [sx]``)."""
    return [value] if isinstance(value, str) else value


def _ordered_pair(value):
    """An energy pair [lower, upper] with upper > lower."""
    if not value[1] > value[0]:
        raise ValueError(f"the second value must be larger than the first, got {list(value)}")
    return value


Pair = Annotated[list[Float], Field(min_length=2, max_length=2)]
EnergyPair = Annotated[Pair, BeforeValidator(lambda v: list(v) if isinstance(v, tuple) else v),
                       AfterValidator(_ordered_pair), Field(description="[lower, upper] (eV), upper > lower")]
Shape = Annotated[list[PositiveInt], BeforeValidator(lambda v: list(v) if isinstance(v, tuple) else v),
                  Field(min_length=2, max_length=2, description="[L1, L2]: unit cells along a1 and a2")]


class Closed(BaseModel):
    """A configuration object: unknown keys are errors; values are typed strictly (no "3" for 3)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class EnergyRange(Closed):
    """Evenly spaced energies ``numpy.linspace(start, stop, num)`` (eV)."""

    start: Float = Field(description="first energy (eV)")
    stop: Float = Field(description="last energy (eV), >= start")
    num: PositiveInt = Field(description="number of energies")

    @model_validator(mode="after")
    def _increasing(self):
        if self.stop < self.start:
            raise ValueError(f"stop must be >= start (eV), got start={self.start}, stop={self.stop}")
        return self


Energies = Union[EnergyRange, Annotated[list[Float], Field(min_length=1)]]


def _realisation_ids(value) -> list[int]:
    ids = list(range(value)) if isinstance(value, int) else list(value)
    if len(set(ids)) != len(ids):
        raise ValueError(f"realisation ids must be distinct, got {value}")
    return ids


Realisations = Annotated[Union[PositiveInt, Annotated[list[NonNegativeInt], Field(min_length=1)]],
                         AfterValidator(_realisation_ids)]


# --------------------------------------------------------------------------- model parameters
_PARAMETER_DOCS = {
    "t": "nearest-neighbour hopping t",
    "rashba": "Rashba coupling λ_R",
    "exchange": "exchange coupling J_ex (along m̂)",
    "mass": "sublattice mass Δ",
    "hbar_v": "Dirac velocity ħv",
    "lattice_constant": "lattice constant a",
    "magnetization": "unit vector m̂ of the magnetisation (|m̂| = 1 within 1e-9; not normalised for you)",
}
_EFFECTIVE_MASS_DOC = "effective mass m* in units of the electron mass"
_RULES = {"positive": {"gt": 0}, "nonnegative": {"ge": 0}, "real": {}}


def _parameter(cls, f) -> tuple[Any, Any]:
    """(type, Field) of one model dataclass field, from its default, unit and sign rule."""
    check, unit = f.metadata["check"], f.metadata["unit"]
    if check == "unit":
        return (Annotated[list[Float], Field(min_length=3, max_length=3)],
                Field(list(f.default), description=_PARAMETER_DOCS["magnetization"]))
    doc = _EFFECTIVE_MASS_DOC if unit == "m_e" else _PARAMETER_DOCS.get(f.name, f.name)
    return Float, Field(f.default, description=f"{doc} ({unit})" if unit and unit != "m_e" else doc,
                        **_RULES[check])


def _model_spec(cls, with_magnetization: bool):
    fields = {"name": (Literal[cls.__name__], Field(description="model class (gpukpm.models)"))}
    for f in dataclasses.fields(cls):
        if f.name == "magnetization" and not with_magnetization:
            continue
        fields[f.name] = _parameter(cls, f)
    suffix = "" if with_magnetization else "Pipeline"
    doc = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
    return create_model(f"{cls.__name__}{suffix}Spec", __base__=Closed, __doc__=doc, **fields)


def _model_name(value):
    return value.get("name") if isinstance(value, dict) else getattr(value, "name", None)


def _model_union(with_magnetization: bool):
    members = tuple(Annotated[_model_spec(cls, with_magnetization), Tag(name)] for name, cls in MODELS.items())
    return Annotated[Union[members], Discriminator(_model_name, custom_error_type="model_name",
                                                   custom_error_message="name must be one of "
                                                   + ", ".join(MODELS))]


ModelSpec = _model_union(with_magnetization=True)
PipelineModelSpec = _model_union(with_magnetization=False)


# --------------------------------------------------------------------------- k-space grids
class PolarGridSpec(Closed):
    """Polar grid k = centre + r(cos φ, sin φ) of a continuum model (gpukpm.engine.kgrid.PolarGrid)."""

    kind: Literal["polar"]
    k_max: PositiveFloat = Field(description="outer radius (nm⁻¹)")
    num_k: PositiveInt = Field(description="radial points")
    num_phi: PositiveInt = Field(description="angles")
    k_min: NonNegativeFloat = Field(0.0, description="inner radius (nm⁻¹), < k_max")
    centre: Pair = Field([0.0, 0.0], description="centre (nm⁻¹)")
    radial_rule: Literal["midpoint", "gauss"] = Field("midpoint", description="radial quadrature")


class SquareGridSpec(Closed):
    """Square grid of spacing 2 k_max/num_k of a continuum model (gpukpm.engine.kgrid.SquareGrid)."""

    kind: Literal["square"]
    k_max: PositiveFloat = Field(description="half width (nm⁻¹)")
    num_k: PositiveInt = Field(description="points per axis")
    centre: Pair = Field([0.0, 0.0], description="centre (nm⁻¹)")
    cutoff: Literal["disc", "square"] = Field("disc", description="keep the disc |k − centre| < k_max or all")


class MonkhorstPackSpec(Closed):
    """The L1 × L2 Monkhorst-Pack grid of a lattice model (gpukpm.engine.kgrid.MonkhorstPack)."""

    kind: Literal["monkhorst_pack"]
    shape: Shape
    patch: list[Annotated[list[Int], Field(min_length=2, max_length=2)]] | None = Field(
        None, min_length=2, max_length=2, description="[[start1, count1], [start2, count2]] (default: all)")


GridSpec = Union[Shape, Annotated[Union[PolarGridSpec, SquareGridSpec, MonkhorstPackSpec], Field(discriminator="kind")]]


# --------------------------------------------------------------------------- one job (the CLI's vocabulary)
class SystemSection(Closed):
    """The real-space supercell (periodic) and its Anderson disorder."""

    shape: Shape | None = Field(None, description="[L1, L2] unit cells (required for real-space commands)")
    disorder: NonNegativeFloat = Field(0.0, description="Anderson disorder W (eV): on-site energies in [−W/2, W/2]")
    realisations: Realisations = Field(1, description="number of disorder realisations (ids 0..n−1) or a list "
                                                       "of distinct ids")


class KspaceSection(Closed):
    """A pristine model in k space: grid and energy window of the kept states."""

    grid: GridSpec = Field(description="[L1, L2] (lattice models) or {kind: polar|square|monkhorst_pack, ...}")
    window: EnergyPair | None = Field(None, description="keep states with energies in [lo, hi] (eV); null: all")
    chunk_size: PositiveInt | None = Field(None, description="k points diagonalised per batch (null: automatic)")



class KpmSection(Closed):
    """Chebyshev expansion and stochastic trace."""

    num_moments: AtLeastTwoInt | None = Field(
        None, description="Chebyshev moments N (give num_moments or eta; default 256)")
    eta: PositiveFloat | None = Field(None, description="band-centre broadening η (eV) of the kernel: chooses N")
    trace: Trace = Field(4, description="random vectors per realisation, or 'exact' (all basis vectors)")
    vectors_per_task: PositiveInt | None = Field(None, description="random vectors per MPI task (null: all)")
    vectors_per_batch: PositiveInt | None = Field(None, description="random vectors advanced together")
    seed: NonNegativeInt = Field(0, description="seed of the random vectors and of the disorder")
    left: Annotated[list[Operator], BeforeValidator(_one_or_list), Field(min_length=1)] = Field(
        ["sx", "sy", "sz"], description="left operators A of μ_nm = Tr[A T_n B T_m]/D")
    right: Operator = Field("jx", description="right operator B (the current ĵ = −i[H, X], eV·nm)")
    dtype: Literal["complex128", "complex64"] = Field("complex128", description="recursion precision")
    block_size: PositiveInt | None = Field(None, description="Chebyshev orders per block (null: from memory)")
    bounds: EnergyPair | None = Field(None, description="spectral bounds [E_min, E_max] (eV); null: Lanczos")
    memory_budget_gb: PositiveFloat | None = Field(None, description="device memory per rank for blocks (GiB)")
    estimator: Literal[ESTIMATORS] = Field("plain", description="stochastic trace estimator (dilution)")


    @model_validator(mode="after")
    def _moments_or_eta(self):
        if self.num_moments is not None and self.eta is not None:
            raise ValueError("give num_moments or eta, not both")
        if self.num_moments is None and self.eta is None:
            self.num_moments = 256
        return self


class ResponseSection(Closed):
    """Kubo-Bastin reconstruction."""

    energies: Energies | None = Field(None, description="Fermi energies (eV): {start, stop, num} or a list")
    kernel: Kernel = Field("jackson", description="KPM kernel")
    parts: Annotated[list[Part], BeforeValidator(_one_or_list), Field(min_length=1)] = Field(
        list(PARTS), description="total = Fermi sea + Fermi surface")
    temperature: NonNegativeFloat = Field(0.0, description="temperature (K)")
    lorentz_lambda: PositiveFloat = Field(kernels.DEFAULT_LORENTZ_LAMBDA, description="λ of the Lorentz kernel")


class TorqueSection(Closed):
    """Magnetisation sampling of the torque fit."""

    order: AtLeastTwoInt = Field(
        2, description="M: 2^M + 1 polar × 2M azimuthal magnetisations (M = 2: the paper's 14; M ≥ 2 fixes "
                       "the 6 torque parameters)")


class DosSection(Closed):
    """Density of states (1D moments)."""

    energies: Energies | None = Field(None, description="energies (eV): {start, stop, num} or a list")
    num_moments: AtLeastTwoInt = Field(512, description="Chebyshev moments N")
    trace: Trace = Field(8, description="random vectors, or 'exact'")
    kernel: Kernel = Field("jackson", description="KPM kernel")


class RunConfig(Closed):
    """One gpukpm job (``gpukpm dos|moments|kspace|torques-run CONFIG.yaml``)."""

    model: ModelSpec = Field(description="the model: name and parameters (gpukpm.models)")
    system: SystemSection = Field(default_factory=SystemSection)
    kspace: KspaceSection | None = Field(None, description="k-space run (gpukpm kspace)")
    kpm: KpmSection = Field(default_factory=KpmSection)
    response: ResponseSection = Field(default_factory=ResponseSection)
    torque: TorqueSection = Field(default_factory=TorqueSection)
    dos: DosSection = Field(default_factory=DosSection)
    backend: Backend = Field("auto", description="auto (GPU when usable) | cpu | gpu")


# --------------------------------------------------------------------------- the pipeline's vocabulary
class PilotSection(Closed):
    """A pilot run that measures the one-vector variance before the production sweep."""

    trace: AtLeastTwoInt = Field(description="random vectors of the pilot")
    shape: Shape | None = Field(None, description="pilot lattice (null: realspace.shape); the one-vector std "
                                                  "is scaled by 1/√D")
    min_trace: PositiveInt = Field(1, description="fewest vectors per realisation of a production job")
    max_trace: PositiveInt | None = Field(None, description="most vectors per realisation (null: no cap)")


class RealspaceSection(Closed):
    """The disorder sweep in real space: one moments job per W × magnetisation × realisation chunk."""

    enabled: Bool = Field(True, description="run the real-space sweep")
    model: PipelineModelSpec | None = Field(None, description="the model without m̂ (set per configuration)")
    shape: Shape | None = None
    disorder: Annotated[list[NonNegativeFloat], Field(min_length=1)] | None = Field(
        None, description="Anderson disorder strengths W (eV), one set of jobs per value")
    realisations: PositiveInt | None = Field(None, description="disorder realisations per W (ids 0..n−1)")
    realisations_per_job: PositiveInt = Field(1, description="realisations computed by one moments job")
    trace: PositiveInt | None = Field(None, description="random vectors per realisation")
    vectors_per_task: PositiveInt | None = Field(None, description="random vectors per MPI task")
    num_moments: AtLeastTwoInt | None = Field(
        None, description="Chebyshev moments N, the same for every W (give num_moments or eta)")
    eta: PositiveFloat | None = Field(
        None, description="band-centre broadening η (eV) of response.kernel; N chosen for the sweep's rescaling")
    seed: NonNegativeInt = Field(0, description="seed of the random vectors and the disorder")
    bounds: EnergyPair | None = Field(
        None, description="spectral bounds (eV) of the whole sweep; null: Gershgorin of the exchange-free model "
                          "+ |J|/2 + max(W)/2")
    target_rel_error: PositiveFloat = Field(
        0.05, description="relative standard error aimed at on the peak χ_FL, χ_DL (the report gives the samples "
                          "needed)")
    memory_budget_gb: PositiveFloat | None = Field(None, description="device memory per rank (GiB)")
    energies: EnergyRange | None = Field(None, description="Fermi energies of the reconstruction (eV)")
    peak_window: EnergyPair | None = Field(None, description="energies searched for the peak torques (eV)")
    pilot: PilotSection | None = Field(
        None, description="size the production trace from a pilot (workflow/rules/pilot.smk): per W one moments "
                          "job of pilot.trace vectors, then `gpukpm plan --pilot` sets every moments job's vectors per "
                          "realisation for target_rel_error on the peak χ's (null: realspace.trace)")


    @model_validator(mode="after")
    def _complete(self):
        if not self.enabled:
            return self
        missing = [k for k in ("model", "shape", "disorder", "realisations", "trace", "energies")
                   if getattr(self, k) is None]
        if missing:
            raise ValueError(f"missing key(s) {missing} (required when enabled)")
        if (self.num_moments is None) == (self.eta is None):
            raise ValueError("give num_moments or eta (the band-centre broadening, eV), exactly one")
        labels = [f"{w:g}" for w in self.disorder]
        if len(set(labels)) != len(labels):
            raise ValueError(f"disorder: repeated values {self.disorder}")
        return self


class KspaceCase(Closed):
    """One pristine k-space calculation (all magnetisations)."""

    label: str | None = Field(None, description="title of its figure")
    match_realspace: Bool = Field(
        False, description="mirror the pristine real-space lattice: grid = realspace.shape, the sweep's "
                           "rescaling and N, realspace.energies (grid, num_moments, bounds, window, energies left out)")
    model: PipelineModelSpec = Field(description="the model without m̂")
    grid: GridSpec | None = Field(None, description="[L1, L2] or {kind: polar|square|monkhorst_pack, ...}")
    window: EnergyPair | None = Field(None, description="kept states' energies [lo, hi] (eV)")
    chunk_size: PositiveInt | None = Field(None, description="k points per batch")
    num_moments: AtLeastTwoInt | None = Field(None, description="Chebyshev moments N")
    bounds: EnergyPair | None = Field(None, description="spectral bounds (eV); null: from the model")
    energies: EnergyRange | None = Field(None, description="Fermi energies (eV)")
    semiclassical: Literal["auto", "dirac", "rashba_2deg", "none"] = Field(
        "auto", description="comparison curve (auto: dirac for GrapheneRashba/Dirac, rashba_2deg for the 2DEGs)")
    valleys: PositiveInt | None = Field(
        None, description="valleys of the semiclassical curve (null: 2 for graphene, 1 otherwise)")


    @model_validator(mode="after")
    def _complete(self):
        given = [k for k in ("grid", "num_moments", "bounds", "window", "energies") if getattr(self, k) is not None]
        if self.match_realspace and given:
            raise ValueError(f"{given} not allowed with match_realspace (taken from realspace)")
        missing = [k for k in ("grid", "num_moments", "energies") if getattr(self, k) is None]
        if not self.match_realspace and missing:
            raise ValueError(f"missing key(s) {missing} (required without match_realspace)")
        return self


class PipelineKspace(Closed):
    """Pristine k-space cases."""

    enabled: Bool = Field(True, description="run the k-space cases")
    cases: dict[str, KspaceCase] = Field(default_factory=dict, description="one name per case")


class PipelineResponse(Closed):
    """Reconstruction-only parameters: changing them reruns the response rule and later ones only."""

    kernel: Kernel = Field("jackson", description="KPM kernel")
    temperature: NonNegativeFloat = Field(0.0, description="temperature (K)")
    parts: Annotated[list[Part], Field(min_length=1)] = Field(list(PARTS), description="Kubo-Bastin parts")


class PipelineTorque(TorqueSection):
    """Magnetisations of the pipeline."""

    subset: Annotated[list[NonNegativeInt], Field(min_length=6)] | None = Field(
        None, description="indices into gpukpm.torque.decomposition.magnetizations(order) (null: all); they must fix the 6 "
                          "torque parameters")


class PipelineConfig(Closed):
    """The Snakemake pipeline (workflow/Snakefile, config/*.yaml)."""

    results: str = Field("results", description="folder (relative to the working directory) of every output")
    title: str = Field("gpukpm spin-orbit torques", description="title of the report")
    backend: Backend = Field("auto", description="auto | cpu | gpu, for every job")
    gpukpm: str | None = Field(None, description="gpukpm executable; its folder goes first on the jobs' PATH")
    realspace: RealspaceSection = Field(default_factory=RealspaceSection)
    kspace: PipelineKspace = Field(default_factory=PipelineKspace)
    response: PipelineResponse = Field(default_factory=PipelineResponse)
    torque: PipelineTorque = Field(default_factory=PipelineTorque)


# --------------------------------------------------------------------------- validation entry points
def _location(error, data, root: str = "") -> str:
    """``loc = ("kpm", "left", 0)`` → ``kpm.left[0]``, walking ``data``: labels of union members are left out
    (a key absent from ``data`` is kept only as the last part of a missing or unknown key)."""
    loc, absent_ok = error["loc"], error["type"] in ("missing", "extra_forbidden")
    node, out = data, root
    for i, part in enumerate(loc):
        if isinstance(part, int) and isinstance(node, list):
            out += f"[{part}]"
            node = node[part] if part < len(node) else None
        elif isinstance(part, str) and isinstance(node, dict) and (part in node or (absent_ok and i == len(loc) - 1)):
            out += f".{part}" if out else part
            node = node.get(part)
    return out or "configuration"


_PHRASES = (("Value error, ", ""), ("Input should be ", "must be "), ("greater than or equal to ", ">= "),
            ("greater than ", "> "), ("less than or equal to ", "<= "), ("less than ", "< "),
            ("a valid integer", "an integer"), ("a valid number", "a number"), ("a valid list", "a list"),
            ("List should have", "must have"), (" after validation", ""))


def _short(message: str) -> str:
    """pydantic's message in the configuration's words: ``must be >= 2``."""
    for old, new in _PHRASES:
        message = message.replace(old, new)
    message = re.sub(r"a valid dictionary( or instance of \w+)?", "a mapping", message)
    return message[0].lower() + message[1:]


def format_error(exc: ValidationError, data, source: str = "", root: str = "") -> str:
    """One line for a pydantic error of ``data``: ``[source: ]key.path: what is allowed, got value``.

    ``root`` is the key path of ``data`` inside a configuration.  Unknown and missing keys come first, then the deepest location; alternatives of a union at the
    same location are joined with "or"; further locations are counted.
    """
    errors = sorted(exc.errors(), key=lambda e: (e["type"] not in ("extra_forbidden", "missing", "model_name"),
                                                 -len(e["loc"])))
    where = _location(errors[0], data, root)
    first = errors[0]
    if first["type"] == "extra_forbidden":
        text = f"{where}: unknown key"
    elif first["type"] == "missing":
        text = f"{where}: missing key"
    else:
        here = [e for e in errors if _location(e, data, root) == where and e["type"] not in ("missing",)]
        messages = list(dict.fromkeys(_short(e["msg"]) for e in here))
        text = f"{where}: " + " or ".join(messages)
        value = first.get("input")
        if first["type"] != "value_error" and not isinstance(value, dict):
            text += f", got {value!r}"
    more = len({_location(e, data, root) for e in errors} - {where})
    prefix = f"{source}: " if source else ""
    return prefix + text + (f" (and {more} more error{'s' * (more > 1)})" if more else "")


def _validate(cls, raw, source: str) -> dict:
    if not isinstance(raw, dict):
        where = f"{source}: " if source else ""
        raise ConfigError(f"{where}the configuration must be a mapping of sections, got {type(raw).__name__}")
    try:
        return cls.model_validate(raw).model_dump(mode="python")
    except ValidationError as exc:
        raise ConfigError(format_error(exc, raw, source)) from None


def validate_run(raw, source: str = "") -> dict:
    """A job configuration checked against :class:`RunConfig`, defaults filled in (plain mapping)."""
    return _validate(RunConfig, raw, source)


def validate_pipeline(raw, source: str = "") -> dict:
    """A pipeline configuration checked against :class:`PipelineConfig`, defaults filled in."""
    return _validate(PipelineConfig, raw, source)


def validate_value(annotation, value, key: str):
    """``value`` checked against one schema type (e.g. :data:`Energies`); errors name ``key``."""
    try:
        return TypeAdapter(annotation).validate_python(value)
    except ValidationError as exc:
        raise ConfigError(format_error(exc, value, root=key)) from None


def json_schema(kind: str = "run") -> dict:
    """The JSON Schema (draft 2020-12) of ``"run"`` (:class:`RunConfig`) or ``"pipeline"`` configurations."""
    cls = {"run": RunConfig, "pipeline": PipelineConfig}[kind]
    return cls.model_json_schema()
