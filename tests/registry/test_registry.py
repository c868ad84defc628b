import pytest

from bench.errors import UnknownNameError
from bench.registry import DATASETS, Registry


def test_registry_refuses_duplicate_names():
    registry = Registry("thing")
    registry.add("a", 1)
    with pytest.raises(ValueError, match="already registered"):
        registry.add("a", 2)
    assert registry.get("a") == 1


def test_decorator_and_lookup_with_suggestion():
    registry = Registry("thing")

    @registry.register("alpha")
    def alpha():
        return "A"

    assert registry.get("alpha")() == "A"
    with pytest.raises(UnknownNameError, match="did you mean 'alpha'"):
        registry.get("alpah")
    assert registry.expand("al*") == ["alpha"]
    with pytest.raises(UnknownNameError, match="no thing matches"):
        registry.expand("z*")


def test_builtin_registries_refuse_a_second_registration():
    with pytest.raises(ValueError, match="already registered"):
        DATASETS.add("digits", DATASETS.get("digits"))
    assert DATASETS.names() == ["cifar10", "digits", "imagefolder", "mnist"]
