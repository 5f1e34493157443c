"""model_graph and layer_groups on real torchvision models with random weights."""

from __future__ import annotations

import networkx as nx
import pytest
import torch
import torchvision
from torch import nn

from cnnvis.graph import GraphTraceWarning, default_layers, group_graph, layer_groups, model_graph

X64 = torch.zeros(1, 3, 64, 64)

ZOO = {
    "resnet18": lambda: torchvision.models.resnet18(),
    "densenet121": lambda: torchvision.models.densenet121(),
    "googlenet": lambda: torchvision.models.googlenet(aux_logits=False, init_weights=False),
    "mobilenet_v3_small": lambda: torchvision.models.mobilenet_v3_small(),
    "efficientnet_b0": lambda: torchvision.models.efficientnet_b0(),
}
# what the data flow must show: a merge op, and how many of them the architecture has
MERGES = {
    "resnet18": ("add", 8),  # 8 BasicBlocks
    # one per dense layer but the first of each block (it concatenates a single tensor), and
    # one at the end of each of the 4 dense blocks
    "densenet121": ("concat", 58 - 4 + 4),
    "googlenet": ("concat", 9),  # 9 Inception modules
    "mobilenet_v3_small": ("add", 6),  # inverted residuals with a skip
    "efficientnet_b0": ("add", 9),  # MBConv blocks with a skip
}


@pytest.fixture(scope="module")
def graphs():
    torch.manual_seed(0)
    out = {}
    for name, ctor in ZOO.items():
        model = ctor()
        out[name] = (model, model_graph(model, X64))
    return out


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_graphs_are_acyclic_branching_and_name_every_conv(graphs, name):
    model, g = graphs[name]
    assert g.graph["method"] == "fx"
    assert nx.is_directed_acyclic_graph(g)
    assert nx.is_weakly_connected(g)
    # every conv of the model appears by its dotted path, as a conv node
    convs = {n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    graph_convs = {d["module"] for _, d in g.nodes(data=True) if d["op"] == "conv"}
    assert convs == graph_convs
    for c in convs:
        assert g.nodes[c]["module"] == c and g.nodes[c]["op"] == "conv"
        assert g.nodes[c]["channels"] == dict(model.named_modules())[c].out_channels
    # branches: a node feeding several consumers, and merges with several inputs
    assert max(d for _, d in g.out_degree()) > 1
    op, count = MERGES[name]
    merges = [n for n, d in g.nodes(data=True) if d["op"] == op and g.in_degree(n) > 1]
    assert len(merges) == count
    # one input, one output, and every node lies on a path between them
    (src,) = [n for n, d in g.nodes(data=True) if d["op"] == "input"]
    (dst,) = [n for n, d in g.nodes(data=True) if d["op"] == "output"]
    assert set(nx.descendants(g, src)) | {src} == set(g.nodes)
    assert set(nx.ancestors(g, dst)) | {dst} == set(g.nodes)
    # order is a topological order
    order = {n: d["order"] for n, d in g.nodes(data=True)}
    assert sorted(order.values()) == list(range(g.number_of_nodes()))
    assert all(order[a] < order[b] for a, b in g.edges)
    assert g.nodes[dst]["out_shape"] == (1000,)
    # the layer groups partition the nodes and form a DAG too
    groups = layer_groups(g)
    assert sorted(n for grp in groups for n in grp.nodes) == sorted(g.nodes)
    assert nx.is_directed_acyclic_graph(group_graph(g, groups))


def test_resnet18_details_and_groups(graphs):
    model, g = graphs["resnet18"]
    assert g.nodes["input"]["out_shape"] == (3, 64, 64)
    assert g.nodes["conv1"]["out_shape"] == (64, 32, 32)
    assert g.nodes["layer4.1.conv2"]["out_shape"] == (512, 2, 2)
    # the residual add of layer2.0 joins the main path and the downsampling shortcut
    assert set(g.predecessors("layer2.0.add")) == {"layer2.0.bn2", "layer2.0.downsample.1"}
    assert set(g.successors("layer1.1.relu@1")) == {"layer2.0.conv1", "layer2.0.downsample.0"}
    # the identity shortcut of layer1.1: its input feeds both conv1 and the add
    assert set(g.successors("layer1.0.relu@1")) == {"layer1.1.conv1", "layer1.1.add"}
    assert g.nodes["layer1.0.relu@1"]["module"] == "layer1.0.relu"
    assert (
        g.nodes["layer1.0.add"]["module"] is None and g.nodes["layer1.0.add"]["scope"] == "layer1.0"
    )
    assert g.nodes["flatten"]["op"] == "flatten" and g.nodes["fc"]["out_shape"] == (1000,)

    groups = layer_groups(g)
    names = [grp.name for grp in groups]
    blocks = [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    assert names == ["input", "conv1", *blocks, "avgpool", "fc", "output"]
    by_name = {grp.name: grp for grp in groups}
    assert by_name["conv1"].nodes == ["conv1", "bn1", "relu", "maxpool"]  # conv+bn+relu+pool
    assert by_name["layer2.0"].kind == "block" and by_name["layer2.0"].type == "BasicBlock"
    assert set(by_name["layer2.0"].nodes) == {
        n for n in g if n.startswith("layer2.0.")
    }  # the downsample shortcut stays inside its block
    assert sorted(n for grp in groups for n in grp.nodes) == sorted(g.nodes)  # a partition
    q = group_graph(g, groups)
    assert nx.is_directed_acyclic_graph(q)
    assert list(nx.topological_sort(q)) == names  # a chain of blocks
    assert q.nodes["layer3.1"]["channels"] == 256


def test_groups_of_other_architectures(graphs):
    _, g = graphs["googlenet"]
    names = {grp.name: grp for grp in layer_groups(g)}
    inception = names["inception3a"]
    assert inception.type == "Inception" and inception.ops.count("conv") == 6
    assert "inception3a.cat" in inception.nodes  # the branches and their concat
    _, g = graphs["densenet121"]
    names = {grp.name: grp for grp in layer_groups(g)}
    assert "features.denseblock1" not in names  # a stage of dense layers is looked into
    assert names["features.denseblock1.denselayer1"].type == "_DenseLayer"
    assert names["features.transition2"].ops == ["norm", "act", "conv", "pool"]
    _, g = graphs["mobilenet_v3_small"]
    names = {grp.name: grp for grp in layer_groups(g)}
    # the squeeze-excitation (pool, fc, act, fc, act, mul) stays inside its inverted residual
    assert "mul" in names["features.4"].ops and names["features.4"].type == "InvertedResidual"


def test_default_layers(graphs):
    _, g = graphs["resnet18"]
    layers = default_layers(g)
    # the stem's ReLU is used once: its rectified output; the blocks' ReLU is reused: the convs
    assert layers[0] == "relu" and layers[1] == "layer1.0.conv1" and layers[-1] == "fc"
    assert len(layers) == 1 + 16 + 3 + 1  # stem, block convs, downsample convs, fc
    _, g = graphs["mobilenet_v3_small"]
    layers = default_layers(g)
    assert "features.1.block.1.fc1" not in layers  # 1x1 squeeze-excitation gates left out
    assert layers[0] == "features.0.2"  # Conv2dNormActivation's Hardswish


def test_default_layers_keep_convs_with_1x1_maps():
    # at 32x32 ResNet-18's last stage has 1x1 maps: real features, not squeeze-excitation gates
    g = model_graph(torchvision.models.resnet18(num_classes=10), torch.zeros(1, 3, 32, 32))
    assert g.nodes["layer4.1.conv2"]["out_shape"][1:] == (1, 1)
    layers = default_layers(g)
    assert "layer4.1.conv2" in layers and len(layers) == 1 + 16 + 3 + 1


def test_fx_and_hooks_agree(graphs):
    for name in ("resnet18", "googlenet"):
        model, g = graphs[name]
        h = model_graph(model, X64, method="hooks")
        assert h.graph["method"] == "hooks"
        assert set(h.nodes) == set(g.nodes) and set(h.edges) == set(g.edges)
        for n in g:
            for key in ("op", "module", "out_shape", "channels", "order", "scope", "stack"):
                assert h.nodes[n][key] == g.nodes[n][key], (name, n, key)


class Gated(nn.Module):
    """Picks a branch by the data: torch.fx cannot trace this."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.a = nn.Conv2d(8, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = self.relu(self.bn(self.stem(x)))
        y = self.a(x) if float(x.mean()) > 0 else self.b(x)
        y = y + x
        z = torch.cat([x, y], 1)
        return self.fc(torch.flatten(self.pool(z), 1))


def test_untraceable_model_falls_back_to_hooks_with_a_warning():
    torch.manual_seed(0)
    model = Gated()
    model.train()
    bn_mean = model.bn.running_mean.clone()
    with pytest.warns(GraphTraceWarning, match="cannot trace Gated"):
        g = model_graph(model, torch.ones(2, 3, 16, 16))
    assert g.graph["method"] == "hooks"
    # the model is left as it was: training mode, untouched running statistics
    assert model.training and all(m.training for m in model.modules())
    assert torch.equal(model.bn.running_mean, bn_mean)
    edges = {
        ("input", "stem"),
        ("stem", "bn"),
        ("bn", "relu"),
        ("relu", "a"),
        ("a", "add"),
        ("relu", "add"),
        ("relu", "cat"),
        ("add", "cat"),
        ("cat", "pool"),
        ("pool", "flatten"),
        ("flatten", "fc"),
        ("fc", "output"),
    }
    assert set(g.edges) == edges  # the branch not taken (b) and the test on the mean are absent
    assert g.nodes["cat"]["out_shape"] == (16, 16, 16) and g.nodes["cat"]["op"] == "concat"
    assert g.nodes["relu"]["op"] == "act" and g.nodes["fc"]["channels"] == 4
    with pytest.raises(RuntimeError, match="cannot trace Gated"):
        model_graph(model, torch.ones(2, 3, 16, 16), method="fx")


def test_clear_errors():
    model = Gated()
    with pytest.raises(ValueError, match=r"shape \(2, 1, 16, 16\)"):
        model_graph(model, torch.ones(2, 1, 16, 16))
    with pytest.raises(TypeError, match="example_input"):
        model_graph(model, [[1.0]])
    with pytest.raises(TypeError, match="nn.Module"):
        model_graph(lambda x: x, torch.ones(1))
    with pytest.raises(ValueError, match="method"):
        model_graph(model, torch.ones(2, 3, 16, 16), method="jit")


def test_a_bare_layer_is_looked_into_by_both_methods():
    conv = nn.Conv2d(2, 3, 3)
    for method in ("fx", "hooks"):
        g = model_graph(conv, torch.zeros(1, 2, 5, 5), method=method)
        assert sorted(g.edges) == [("conv2d", "output"), ("input", "conv2d")]
        assert g.nodes["conv2d"]["op"] == "conv" and g.nodes["conv2d"]["out_shape"] == (3, 3, 3)


def test_sequential_model_and_shared_module():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Conv2d(1, 4, 3), relu, nn.Conv2d(4, 4, 3), relu, nn.Flatten())
    model.train()
    g = model_graph(model, torch.zeros(3, 1, 9, 9))
    assert model.training
    order = sorted(g.nodes, key=lambda n: g.nodes[n]["order"])
    assert order == ["input", "0", "1", "2", "1@1", "4", "output"]
    assert g.nodes["1@1"]["module"] == "1" and g.nodes["1@1"]["call"] == 1
    assert g.nodes["4"]["out_shape"] == (100,) and g.nodes["output"]["out_shape"] == (100,)
    assert nx.is_simple_path(g, order)
    assert default_layers(g) == ["0", "2"]  # the shared ReLU is called twice
    groups = layer_groups(g)
    assert [grp.nodes for grp in groups] == [["input"], order[1:-1], ["output"]]


class Writes(nn.Module):
    """Writes one branch into a buffer in place, behind a data-dependent test."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        y = self.a(x)
        z = torch.zeros_like(y)
        if bool(y.abs().sum() >= 0):
            z[:, :2] = self.b(x)[:, :2]
        z += y
        return z


def test_hooks_follow_in_place_writes():
    with pytest.warns(GraphTraceWarning):
        g = model_graph(Writes(), torch.ones(1, 3, 4, 4))
    assert ("b", "setitem") in g.edges and ("zeros_like", "setitem") in g.edges
    assert set(g.predecessors("add")) == {"setitem", "a"} and g.nodes["add"]["op"] == "add"
    assert list(g.predecessors("output")) == ["add"]


def test_a_group_of_whole_sibling_blocks_is_named_by_its_first_and_last():
    from cnnvis.models.demo import DemoCNN

    g = model_graph(DemoCNN(), torch.zeros(1, 1, 8, 8))
    names = [grp.name for grp in layer_groups(g)]
    # block1 has no pool, so it shares a group with block2 up to block2's pool
    assert names == ["input", "block1-block2", "block3", "head.fc1", "head.fc2", "output"]
