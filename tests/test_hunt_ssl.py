"""Bad inputs of self-supervised specs found by the bad-input hunt: pydantic's labels of union
members in key paths and messages (``head.hidden.literal['auto']``, ``augment[1].grayscale.p``),
augmentation steps without a type or with an empty list, crops of area 0, views losses on the
wrong edges (a traceback when similarity_kl sat on the self edge), labels and logits losses said
twice, a warm-up longer than the run and batches too small for NT-Xent found only by ``train``,
and a search whose loss and gate choices ignored that the graph is self-supervised."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from .conftest import small_spec, write_spec

SSL = small_spec(
    "ssl-hunt",
    {"a": {"model": {"type": "small_cnn", "width": 4}}, "b": {"model": {"type": "small_cnn"}}},
    [
        {"to": "a", "from": "labels"},
        {"to": "b", "from": "labels"},
        {"to": "a", "from": "b"},
        {"to": "b", "from": "a"},
    ],
    epochs=2,
    self_supervised={
        "augment": [
            {"type": "random_resized_crop", "scale": [0.5, 1.0]},
            "horizontal_flip",
            {"type": "grayscale", "p": 0.2},
        ],
        "head": {"dim": 8},
        "knn": {"k": 5},
    },
)


# a one-node spec's text before its self_supervised section (eight lines: the tests below
# give line and column numbers after it)
ONE_NODE = (
    "version: 1\nname: s\ndata: {dataset: digits}\ntrain: {epochs: 2}\n"
    "nodes:\n  a: {model: small_cnn}\nedges:\n  - {from: labels, to: a}\n"
)


def spec(**sections: Any) -> dict[str, Any]:
    """The spec above with ``sections`` merged in (one level deep)."""
    data = copy.deepcopy(SSL)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def validate(tmp_path: Path, cli: Any, data: dict[str, Any]) -> tuple[int, list[str]]:
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if not line.endswith(("warnings)", "edges"))]


def test_the_spec_the_cases_break_is_valid(tmp_path: Path, cli: Any) -> None:
    code, _, err = cli("validate", write_spec(tmp_path, SSL))
    assert code == 0, err


# --------------------------------------------------------------------------- union members


@pytest.mark.parametrize(
    ("where", "value", "key", "message"),
    [
        ("head", {"hidden": 0}, "self_supervised.head.hidden", "must be >= 1, got 0"),
        ("head", {"hidden": "big"}, "self_supervised.head.hidden", "expected an integer"),
        ("head", {"classifier": "a..b"}, "self_supervised.head.classifier", "'a..b' is not"),
    ],
)
def test_auto_or_a_value_is_one_message_at_its_key(
    tmp_path: Path, cli: Any, where: str, value: Any, key: str, message: str
) -> None:
    """Was two lines keyed by pydantic's member labels, one of them
    "head.classifier.chain[function-after[functools.partial(<function max_length_validator
    at 0x...>"."""
    data = spec()
    data["self_supervised"][where] = value
    code, lines = validate(tmp_path, cli, data)
    assert code == 1
    assert len(lines) == 1, lines
    assert f"  {key}: {message}" in lines[0]
    assert "'auto' is also allowed here" in lines[0]
    assert "literal[" not in lines[0] and "function-" not in lines[0]


def test_train_threads_auto_or_a_count_is_one_message_too(tmp_path: Path, cli: Any) -> None:
    data = spec(train={"threads": 0})
    code, lines = validate(tmp_path, cli, data)
    assert code == 1 and len(lines) == 1, lines
    assert "train.threads: must be >= 1, got 0 ('auto' is also allowed here)" in lines[0]


def test_a_step_option_is_keyed_as_written_not_by_the_step_type(
    tmp_path: Path, cli: Any, spec_file: Any
) -> None:
    """Was 'augment[2].grayscale.p' at the step's column: the step's type is no key."""
    text = (
        ONE_NODE + "self_supervised:\n  augment:\n    - {type: grayscale, p: 1.5}\n"
        "    - {type: horizontal_flip, prob: 0.5}\n"
    )
    code, _, err = cli("validate", spec_file(text))
    assert code == 1, err
    assert ":11:25  self_supervised.augment[0].p: must be <= 1.0, got 1.5" in err
    # the unknown option is said with the step's own keys
    assert ":12:31  self_supervised.augment[1].prob: unknown key 'prob'" in err
    assert "(allowed here: type, p)" in err


# --------------------------------------------------------------------------- augment steps


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"p": 0.5}, "an augmentation step needs its type (add type: one of random_resized_crop"),
        ({"type": 3}, "expected the name of an augmentation step as its type, got 3"),
        (7, "expected an augmentation step (its name, or a mapping with its type and options)"),
        (["horizontal_flip"], "got a list"),
    ],
)
def test_a_step_without_a_usable_type_says_what_a_step_is(
    tmp_path: Path, cli: Any, step: Any, message: str
) -> None:
    """Was "unable to extract tag using discriminator 'type'" and "input tag '3' found using
    'type' does not match any of the expected tags"."""
    data = spec()
    data["self_supervised"]["augment"][1] = step
    code, lines = validate(tmp_path, cli, data)
    assert code == 1 and len(lines) == 1, lines
    assert "self_supervised.augment[1]: " in lines[0] and message in lines[0]
    assert "discriminator" not in lines[0] and "tag" not in lines[0]


def test_an_empty_augment_list_is_refused(tmp_path: Path, cli: Any) -> None:
    """Was valid: both views the same image, NT-Xent's positive pair identical."""
    data = spec()
    data["self_supervised"]["augment"] = []
    code, lines = validate(tmp_path, cli, data)
    assert code == 1 and len(lines) == 1, lines
    assert "self_supervised.augment: an empty augment list makes both views the same" in lines[0]
    assert "leave augment out for SimCLR's pipeline" in lines[0]


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        ([0.0, 1.0], "augment[0].scale[0]: must be > 0.0, got 0.0"),
        ([0.5], "augment[0].scale: expected a range [low, high] of two numbers, got 1"),
        ([0.1, 0.5, 1.0], "augment[0].scale: expected a range [low, high] of two numbers, got 3"),
    ],
)
def test_a_crop_scale_of_area_zero_or_not_a_pair_is_refused(
    tmp_path: Path, cli: Any, scale: list[float], message: str
) -> None:
    """[0.0, 0.0] was valid (kornia fell back to a centre crop, unsaid); lengths were said in
    pydantic's words ('list should have at least 2 items after validation')."""
    data = spec()
    data["self_supervised"]["augment"][0]["scale"] = scale
    code, lines = validate(tmp_path, cli, data)
    assert code == 1 and len(lines) == 1, lines
    assert message in lines[0]


# --------------------------------------------------------------------------- losses on edges


def _with_edges(*edges: dict[str, Any], **nodes: Any) -> dict[str, Any]:
    data = spec()
    data["edges"] = list(edges)
    for name, node in nodes.items():
        data["nodes"][name] = node
    return data


def test_a_peers_views_loss_on_the_self_edge_is_refused_not_a_traceback(
    tmp_path: Path, cli: Any
) -> None:
    """similarity_kl on the self edge trained into an AssertionError (its kernel needs a
    sender); view_mse there would compare a node with itself: 0, nothing learnt."""
    data = _with_edges(
        {"to": "a", "from": "labels", "loss": "similarity_kl"},
        {"to": "b", "from": "labels", "loss": "view_mse"},
        {"to": "a", "from": "b"},
    )
    code, lines = validate(tmp_path, cli, data)
    assert code == 1 and len(lines) == 2, lines
    for node, loss in (("a", "similarity_kl"), ("b", "view_mse")):
        assert any(
            f"the self edge into '{node}' uses the '{loss}' loss, which compares a node's views "
            f"with another node's: on the self edge it would compare '{node}' with itself" in line
            for line in lines
        ), lines
    run = tmp_path / "run"
    code, _, err = cli("train", write_spec(tmp_path, data), "--run-dir", run, "--no-progress")
    assert code == 1 and "Traceback" not in err and "AssertionError" not in err
    assert "the self edge into 'a'" in err and not run.exists()


def test_nt_xent_between_two_nodes_is_refused(tmp_path: Path, cli: Any) -> None:
    """Was valid: NT-Xent ignores its sender, so the edge only repeated the receiver's own
    self edge under another name."""
    data = _with_edges(
        {"to": "a", "from": "labels"},
        {"to": "b", "from": "labels"},
        {"to": "a", "from": "b", "loss": "nt_xent"},
    )
    code, lines = validate(tmp_path, cli, data)
    assert code == 1 and len(lines) == 1, lines
    assert (
        "edge b -> a uses the 'nt_xent' loss, which contrasts the receiver's own two views: "
        in (lines[0])
    )
    assert "'b' would be ignored" in lines[0] and "use similarity_kl or view_mse" in lines[0]


@pytest.mark.parametrize(
    ("edge", "message"),
    [
        (
            {"to": "a", "from": "labels", "loss": "ce"},
            "the self edge into 'a' uses the 'ce' loss, which needs labels",
        ),
        (
            {"to": "a", "from": "labels", "loss": "kl"},
            "which compares class logits; in a self-supervised graph the self edge",
        ),
        (
            {"to": "a", "from": "labels", "loss": "attention"},
            "uses the 'attention' loss, which compares two taps' features",
        ),
        (
            {"to": "a", "from": "b", "loss": "ce"},
            "edge b -> a uses the 'ce' loss, which compares labels",
        ),
        (
            {"to": "a", "from": "b", "loss": "dkd"},
            "edge b -> a uses the 'dkd' loss, which compares class logits",
        ),
    ],
)
def test_a_labels_or_logits_loss_is_said_once_in_a_self_supervised_graphs_words(
    tmp_path: Path, cli: Any, edge: dict[str, Any], message: str
) -> None:
    """Each was said twice, once with the supervised hint ('use a labels loss such as ce',
    'use a loss between models such as kl'), wrong in a graph without labels or logits."""
    data = _with_edges({"to": "b", "from": "labels"}, {"to": "b", "from": "a"}, edge)
    code, lines = validate(tmp_path, cli, data)
    assert code == 1 and len(lines) == 1, lines
    assert message in lines[0]
    assert "such as ce" not in lines[0] and "such as kl" not in lines[0]


@pytest.mark.parametrize("loss", ["similarity", "rkd", "attention", "hint"])
def test_a_feature_loss_between_taps_is_allowed_as_documented(
    tmp_path: Path, cli: Any, loss: str
) -> None:
    """similarity and rkd between taps were refused as 'compares class logits', though
    docs/self-supervised.md says feature losses between taps work."""
    tapped = {"model": {"type": "small_cnn", "width": 4}, "taps": {"f": "block2"}}
    data = _with_edges(
        {"to": "a", "from": "labels"},
        {"to": "b", "from": "labels"},
        {"to": "a.f", "from": "b.f", "loss": loss},
        a=tapped,
        b=tapped,
    )
    code, lines = validate(tmp_path, cli, data)
    assert code == 0, lines


# --------------------------------------------------------------------------- training needs


@pytest.mark.parametrize(
    ("scheduler", "key", "said"),
    [
        (
            {"type": "warmup_cosine", "warmup_epochs": 2},
            "defaults.scheduler.warmup_epochs",
            "2 epochs,",
        ),
        ("warmup_cosine", "defaults.scheduler", "10 epochs (its default),"),
    ],
)
def test_a_warm_up_as_long_as_the_run_is_found_by_validate(
    tmp_path: Path, cli: Any, scheduler: Any, key: str, said: str
) -> None:
    """Was valid; `ktg train` made a run directory, then stopped."""
    data = spec(defaults={"scheduler": scheduler})
    code, lines = validate(tmp_path, cli, data)
    assert code == 1 and len(lines) == 1, lines
    assert f"  {key}: warmup_cosine warms up for {said} but training runs 2" in lines[0]
    assert "set warmup_epochs below train.epochs" in lines[0]
    run = tmp_path / "run"
    code, _, err = cli("train", write_spec(tmp_path, data), "--run-dir", run, "--no-progress")
    assert code == 1 and "cosine would never start" in err and not run.exists()


def test_a_warm_up_shorter_than_the_run_and_a_node_s_own_scheduler(
    tmp_path: Path, cli: Any
) -> None:
    data = spec(defaults={"scheduler": {"type": "warmup_cosine", "warmup_epochs": 1}})
    assert validate(tmp_path, cli, data)[0] == 0
    data["nodes"]["b"]["scheduler"] = {"type": "warmup_cosine", "warmup_epochs": 3}
    code, lines = validate(tmp_path, cli, data)
    assert code == 1 and len(lines) == 1, lines
    assert "nodes.b.scheduler.warmup_epochs: warmup_cosine warms up for 3 epochs" in lines[0]


def test_a_batch_of_one_is_found_by_validate(tmp_path: Path, cli: Any) -> None:
    """Was valid: NT-Xent has no negatives in a batch of one (train refused it later)."""
    code, lines = validate(tmp_path, cli, spec(data={"batch_size": 1}))
    assert code == 1 and len(lines) == 1, lines
    assert (
        "data.batch_size: batch_size is 1, but the nt_xent loss of the self edge of 'a' "
        in (lines[0])
    )
    assert "compares samples" in lines[0] and "set data.batch_size to 2 or more" in lines[0]


def test_a_last_batch_of_one_is_found_by_validate(tmp_path: Path, cli: Any) -> None:
    data = spec(data={"batch_size": 21, "drop_last": False})  # 64 = 3 x 21 + 1
    code, lines = validate(tmp_path, cli, data)
    assert code == 1 and len(lines) == 1, lines
    assert (
        "data.drop_last: the last training batch holds 1 sample(s) (64 in batches of 21)"
        in (lines[0])
    )
    data["data"]["drop_last"] = True  # the last batch dropped: fine
    assert validate(tmp_path, cli, data)[0] == 0


# --------------------------------------------------------------------------- search


def test_search_loss_choices_follow_the_self_supervised_graph(tmp_path: Path, cli: Any) -> None:
    """nt_xent on the self edge and similarity_kl / view_mse between nodes were refused as
    'needs a labels loss such as ce' / 'a loss between logits'; ce and kl were accepted."""
    good = spec(
        search={
            "objective": {"metric": "knn_top1"},
            "edges": [
                {"to": "a", "from": "labels", "losses": ["nt_xent"]},
                {"to": "a", "from": "b", "losses": ["similarity_kl", "view_mse"]},
            ],
        }
    )
    code, lines = validate(tmp_path, cli, good)
    assert code == 0, lines
    bad = copy.deepcopy(good)
    bad["search"]["edges"] = [
        {"to": "a", "from": "labels", "losses": ["ce", "similarity_kl"]},
        {"to": "a", "from": "b", "losses": ["kl", "nt_xent"]},
    ]
    code, lines = validate(tmp_path, cli, bad)
    assert code == 1 and len(lines) == 4, lines
    for i, j, name, edge in (
        (0, 0, "ce", "labels -> a"),
        (0, 1, "similarity_kl", "labels -> a"),
        (1, 0, "kl", "b -> a"),
        (1, 1, "nt_xent", "b -> a"),
    ):
        assert any(
            f"search.edges[{i}].losses[{j}]: '{name}' cannot be chosen for edge {edge}" in line
            for line in lines
        ), (name, lines)


def test_search_gate_choices_without_class_logits(tmp_path: Path, cli: Any) -> None:
    """'correct' among the choices was valid: every trial that drew it failed."""
    data = spec(
        search={
            "objective": {"metric": "knn_top1"},
            "gates": ["through", "correct"],
            "edges": [{"to": "a", "from": "b", "gates": ["correct", "cutoff"]}],
        }
    )
    code, lines = validate(tmp_path, cli, data)
    assert code == 1 and len(lines) == 2, lines
    assert "search.gates[1]: gate 'correct' weighs each sample by the sender's class" in lines[0]
    assert "search.edges[0].gates[0]: gate 'correct'" in lines[1]


# --------------------------------------------------------------------------- validate --deep


@pytest.mark.parametrize(
    ("classifier", "said"),
    [
        ("block3", "'block3' of 'SmallCNN' is a Sequential, not a Linear layer"),
        ("nothere", "'nothere' is not a module of 'SmallCNN' (its top-level modules: block1,"),
    ],
)
def test_a_head_classifier_that_is_no_linear_layer_names_the_one_to_use(
    tmp_path: Path, cli: Any, classifier: str, said: str
) -> None:
    """A missing module was 'is no such module, not a Linear layer'; the hint said 'e.g. fc'
    whatever the model."""
    data = spec()
    data["self_supervised"]["head"]["classifier"] = classifier
    code, _, err = cli("validate", "--deep", write_spec(tmp_path, data))
    assert code == 1 and "Traceback" not in err
    assert f"self_supervised.head.classifier: node 'a': {said}" in err
    assert "(name a Linear layer: the model's last is 'fc', which auto picks)" in err


def test_an_empty_self_supervised_section_is_not_read_as_absent(
    tmp_path: Path, cli: Any, spec_file: Any
) -> None:
    """'self_supervised:' with every option commented out is null to YAML: it was read as no
    section, and the graph validated (and trained) as a supervised one, on the labels."""
    text = ONE_NODE + "self_supervised:\n  # augment: [horizontal_flip]\n"
    code, _, err = cli("validate", spec_file(text))
    assert code == 1, err
    assert ":9:1  self_supervised: the self_supervised section is empty: YAML reads it" in err
    assert "write 'self_supervised: {}' for SimCLR's defaults" in err
    code, _, err = cli(
        "validate", spec_file(text.replace("self_supervised:\n", "self_supervised: {}\n"))
    )
    assert code == 0, err


# --------------------------------------------------------------------------- checkpoints


def _weights(tmp_path: Path, self_supervised: bool) -> Path:
    """A plain state_dict of a small_cnn (width 4, 4 classes, 1 channel): a classifier's, or a
    self-supervised node's (encoder.*, projector.*, as best/<node>.pt holds)."""
    import torch

    from ktg_dsl.components.models.heads import with_projector
    from ktg_dsl.registry import MODELS, load_builtins

    load_builtins()
    model = MODELS.get("small_cnn").build({"width": 4}, num_classes=4, in_channels=3)
    if self_supervised:
        model = with_projector(model, "auto", "auto", 8)
    path = tmp_path / ("ssl.pt" if self_supervised else "classifier.pt")
    torch.save(model.state_dict(), path)
    return path


def _frozen_a(data: dict[str, Any], weights: Path, **more: Any) -> dict[str, Any]:
    data["nodes"]["a"] = {**data["nodes"]["a"], "checkpoint": str(weights), **more}
    data["edges"] = [e for e in data["edges"] if e["to"] != "a"]  # a: a frozen teacher
    return data


def test_deep_checks_a_self_supervised_teacher_as_training_loads_it(
    tmp_path: Path, cli: Any
) -> None:
    """validate --deep loaded the checkpoint into the bare model: a self-supervised run's
    best/<node>.pt (what the docs say fits) was refused, a classifier's passed and `train`
    stopped on it after making a run directory."""
    data = _frozen_a(spec(), _weights(tmp_path, self_supervised=True))
    code, _, err = cli("validate", "--deep", write_spec(tmp_path, data))
    assert code == 0, err
    data = _frozen_a(spec(), _weights(tmp_path, self_supervised=False))
    code, _, err = cli("validate", "--deep", write_spec(tmp_path, data))
    assert code == 1 and "Traceback" not in err
    assert "nodes.a.checkpoint: checkpoint " in err and "missing keys encoder." in err
    assert "It holds a classifier's weights, and this node is self-supervised" in err


def test_a_self_supervised_checkpoint_in_a_supervised_graph_says_how_to_use_it(
    tmp_path: Path, cli: Any
) -> None:
    """The words say why the keys differ and how to start a classifier from the encoder; with
    that, `validate --deep` was a traceback ('Tensor.item() cannot be called on meta
    tensors': the partial load's own tensors are meta tensors there)."""
    data = spec()
    del data["self_supervised"]
    data = _frozen_a(data, _weights(tmp_path, self_supervised=True))
    code, _, err = cli("validate", "--deep", write_spec(tmp_path, data))
    assert code == 1 and "Traceback" not in err
    assert "It holds a self-supervised node's weights (an encoder and a projector" in err
    assert "checkpoint_prefix: {'encoder.': ''} and checkpoint_fit: partial" in err
    data["nodes"]["a"].update(checkpoint_prefix={"encoder.": ""}, checkpoint_fit="partial")
    code, _, err = cli("validate", "--deep", write_spec(tmp_path, data))
    assert code == 0 and "Traceback" not in err, err
    assert "kept its own initialisation for 2: fc.weight, fc.bias" in err


# --------------------------------------------------------------------------- options unused


def test_options_that_change_nothing_are_warned_about(tmp_path: Path, cli: Any) -> None:
    """A kNN temperature without weighted: true, and saturation or hue on one-channel images,
    were silently ignored."""
    data = spec(data={"dataset": {"type": "synthetic", "channels": 1, "image_size": 8}})
    data["self_supervised"]["knn"]["temperature"] = 0.1
    data["self_supervised"]["augment"].append(
        {"type": "color_jitter", "brightness": 0.4, "hue": 0.2}
    )
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 0, err
    assert "self_supervised.knn.temperature: warning: the temperature weighs the votes" in err
    assert "self_supervised.augment[3].hue: warning: the images have one channel" in err
    assert "saturation" not in err  # not written: its default is no choice of the user's
    # a run's spec.resolved.yaml writes every default: no one chose them, no warning
    data["self_supervised"]["knn"]["temperature"] = 0.07
    data["self_supervised"]["augment"][3].update(saturation=0.4, hue=0.1)
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 0 and "warning" not in err, err
    data["self_supervised"]["knn"]["weighted"] = True
    data["data"]["dataset"]["channels"] = 3
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 0 and "warning" not in err, err


@pytest.mark.parametrize(("key", "value"), [("hidden", 1_000_000_000), ("dim", 65536)])
def test_a_projector_too_wide_to_allocate_is_refused(
    tmp_path: Path, cli: Any, key: str, value: int
) -> None:
    """hidden had no bound (a traceback from the allocator in `train`), dim one of 65536: with
    hidden 65536 too, 17 GB of weights, and the process was killed for memory."""
    data = spec()
    data["self_supervised"]["head"][key] = value
    code, lines = validate(tmp_path, cli, data)
    assert code == 1 and len(lines) == 1, lines
    assert f"self_supervised.head.{key}: must be <= 16384, got {value}" in lines[0]


@pytest.mark.parametrize("scheduler", ["cosine", "warmup_cosine"])
def test_a_cosine_that_ends_above_the_learning_rate_is_warned_about(
    tmp_path: Path, cli: Any, scheduler: str
) -> None:
    """eta_min is a learning rate; above the optimizer's, the schedule rose over the run."""
    optimizer = {"type": "lars", "lr": 0.5}
    sched = {"type": scheduler, "eta_min": 2.0}
    sched.update({"warmup_epochs": 1} if scheduler == "warmup_cosine" else {})
    data = spec(defaults={"optimizer": optimizer, "scheduler": sched})
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 0, err
    assert (
        f"defaults.scheduler.eta_min: warning: {scheduler} ends at eta_min 2, above the lars "
        "optimizer's lr 0.5: the learning rate would rise" in err
    )
    assert err.count("warning:") == 1  # said once for the two nodes that share it
    data["defaults"]["scheduler"]["eta_min"] = 0.001
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 0 and "warning" not in err, err


def test_deep_checks_the_head_of_every_search_model_choice(tmp_path: Path, cli: Any) -> None:
    """The search's model choices were probed for their logits, not for the classifier the
    projector replaces: a trial that drew one without it failed."""
    data = spec(search={"objective": {"metric": "knn_top1"}, "models": {"a": ["resnet20"]}})
    data["self_supervised"]["head"]["classifier"] = "block3.0"
    code, _, err = cli("validate", "--deep", write_spec(tmp_path, data))
    assert code == 1 and "Traceback" not in err
    assert (
        "self_supervised.head.classifier: node 'a', search choice 'resnet20': 'block3.0' is not "
        "a module of 'CifarResNet'" in err
    )


def test_a_frozen_teacher_s_schedule_is_not_checked(tmp_path: Path, cli: Any) -> None:
    """A frozen teacher has no optimizer: the defaults' warm-up, used by it alone, is no issue."""
    data = _frozen_a(spec(), _weights(tmp_path, self_supervised=True))
    data["defaults"] = {"scheduler": {"type": "warmup_cosine", "warmup_epochs": 5}}
    data["nodes"]["b"]["scheduler"] = "cosine"
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 0, err
    del data["nodes"]["b"]["scheduler"]  # b trains with the defaults' warm-up: 5 of 2 epochs
    code, _, err = cli("validate", write_spec(tmp_path, data))
    assert code == 1 and "defaults.scheduler.warmup_epochs: warmup_cosine warms up" in err


@pytest.mark.parametrize("optimizer", ["lars", "sgd", "rmsprop"])
def test_a_momentum_of_one_or_more_is_refused(tmp_path: Path, cli: Any, optimizer: str) -> None:
    """A momentum of 1 or more never forgets a gradient (the step grows without bound)."""
    data = spec(defaults={"optimizer": {"type": optimizer, "lr": 0.1, "momentum": 1.0}})
    code, lines = validate(tmp_path, cli, data)
    assert code == 1 and any(
        "defaults.optimizer.momentum: must be < 1.0, got 1.0" in line for line in lines
    ), lines
    data = spec(defaults={"optimizer": {"type": optimizer, "lr": 0.1, "momentum": 0.99}})
    assert validate(tmp_path, cli, data)[0] == 0


@pytest.mark.parametrize("value", ["no", "yes", 1, 0])
def test_a_component_s_boolean_option_takes_only_true_or_false(
    tmp_path: Path, cli: Any, value: Any
) -> None:
    """As the spec's own booleans: 'no' is not false, 1 is not true."""
    data = spec(defaults={"optimizer": {"type": "lars", "exclude_bias_and_norm": value}})
    code, lines = validate(tmp_path, cli, data)
    assert code == 1 and any(
        "defaults.optimizer.exclude_bias_and_norm: expected true or false" in line for line in lines
    ), lines
