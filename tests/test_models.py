import pickle

import pytest
import torch

from shiftlab.core.errors import CheckpointError, UserError
from shiftlab.data import load_dataset
from shiftlab.models import (
    MODELS,
    ModelCard,
    ModelConfig,
    build_model,
    fingerprint,
    load_model,
    save_checkpoint,
)

NATIVE = [n for n in MODELS.names() if not n.endswith(":")]


def _config(arch: str, channels: int = 1, size: int = 28, classes: int = 10) -> ModelConfig:
    return ModelConfig(arch, classes, channels, (size, size), (0.5,) * channels, (0.25,) * channels)


@pytest.mark.parametrize("arch", NATIVE)
def test_every_registered_architecture_takes_01_images(arch):
    model = build_model(_config(arch, 3, 32)).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        feats = model.forward_features(x)
        assert out.shape == (2, 10) and feats.ndim == 2 and feats.shape[0] == 2
        assert torch.allclose(model.model.classifier(feats), out, atol=1e-5)


def test_normalized_applies_mean_std_inside():
    model = build_model(_config("small-cnn")).eval()
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(model(x), model.model((x - 0.5) / 0.25))


def test_torchvision_by_name_with_grayscale():
    model = build_model(_config("torchvision:resnet18", 1, 32, 7)).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 32, 32)).shape == (2, 7)
    with pytest.raises(UserError, match="no classification model"):
        build_model(_config("torchvision:notanet"))


def test_checkpoint_roundtrip_fingerprint_and_tamper(tmp_path):
    model = build_model(_config("small-cnn"))
    card = save_checkpoint(tmp_path / "ckpt", model, ModelCard(_config("small-cnn"), name="m", dataset="fashion-mnist"))
    loaded, card2 = load_model(tmp_path / "ckpt")
    assert card2.fingerprint == card.fingerprint == fingerprint(model, card.config)
    assert not loaded.training
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    other = build_model(_config("small-cnn"))
    assert fingerprint(other, card.config) != card.fingerprint
    # tampered weights no longer match the card's fingerprint
    from safetensors.torch import load_file, save_file

    state = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    state["model.classifier.bias"] += 1
    save_file(state, str(tmp_path / "ckpt" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="fingerprint"):
        load_model(tmp_path / "ckpt")


def test_pt_files_load_weights_only_and_refuse_pickled_objects(tmp_path):
    model = build_model(_config("small-cnn"))
    card = ModelCard(_config("small-cnn"), strip_prefixes=("module.",))
    torch.save({"module." + k: v for k, v in model.state_dict().items()}, tmp_path / "w.pt")
    (tmp_path / "w.json").write_text(__import__("json").dumps(card.to_dict()))
    loaded, _ = load_model(tmp_path / "w.pt")
    assert torch.equal(loaded.state_dict()["model.classifier.weight"], model.state_dict()["model.classifier.weight"])

    class Payload:
        def __reduce__(self):
            return (print, ("owned",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"x": Payload()}))
    (tmp_path / "evil.json").write_text((tmp_path / "w.json").read_text())
    with pytest.raises(CheckpointError, match="refuses"):
        load_model(tmp_path / "evil.pt")


def test_wrong_architecture_is_a_clear_error(tmp_path):
    model = build_model(_config("small-cnn"))
    save_checkpoint(tmp_path / "c", model, ModelCard(_config("small-cnn")))
    import json

    card = json.loads((tmp_path / "c" / "model.json").read_text())
    card["config"]["arch"] = "wrn-16-4"
    card["fingerprint"] = ""
    (tmp_path / "c" / "model.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="do not match architecture"):
        load_model(tmp_path / "c")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing")


def test_config_from_dataset_info():
    from shiftlab.models import config_for

    info = load_dataset("fashion-mnist", "test", limit=1).info
    cfg = config_for("small-cnn", info)
    assert (cfg.in_channels, cfg.num_classes, cfg.image_size) == (1, 10, (28, 28))


def test_wrong_class_count_error_names_the_mismatch_and_a_raw_pickle_prints_only_our_error(tmp_path, capfd):
    """Issue 14, item 8: the useful line of torch's error was lost; a raw pickle printed a torch warning."""
    import json
    import warnings

    model = build_model(_config("small-cnn"))
    save_checkpoint(tmp_path / "ten", model, ModelCard(_config("small-cnn")))
    card = json.loads((tmp_path / "ten" / "model.json").read_text())
    card["config"]["num_classes"] = 5
    card["fingerprint"] = ""
    (tmp_path / "ten" / "model.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match=r"size mismatch for model\.classifier"):
        load_model(tmp_path / "ten")

    class Payload:
        def __reduce__(self):
            return (print, ("owned",))

    (tmp_path / "raw.pt").write_bytes(pickle.dumps({"x": Payload()}, protocol=4))
    (tmp_path / "raw.json").write_text(json.dumps(ModelCard(_config("small-cnn")).to_dict()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning torch emits would fail here
        with pytest.raises(CheckpointError, match="refuses"):
            load_model(tmp_path / "raw.pt")
    assert "owned" not in capfd.readouterr().out
