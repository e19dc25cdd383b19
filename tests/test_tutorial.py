"""PyTorch's "Training a classifier" tutorial, with only the imports changed, on shapes.

The shape of https://pytorch.org/tutorials/beginner/blitz/cifar10_tutorial.html: an
``nn.Module`` subclass with conv, pool and linear layers, ``CrossEntropyLoss``,
``SGD(lr=0.001, momentum=0.9)``, batches of 4 and the zero_grad / forward / backward / step
loop. The class and the loop below are the tutorial's code; only the imports differ. The
same code then runs in PyTorch from the same initial weights on the same batches, and the
two loss trajectories must agree.
"""

import numpy as np
import torch as real_torch

import minicnn as torch  # the only change: the imports
import minicnn.nn as nn
import minicnn.nn.functional as F
import minicnn.optim as optim
from minicnn.data import DataLoader, shapes
from minicnn.data.transforms import Normalize


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 4)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)  # flatten all dimensions except batch
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


def train(net, criterion, optimizer, trainloader, tensor, epochs=2):
    """The tutorial's loop; returns the loss of every batch."""
    losses = []
    for epoch in range(epochs):  # noqa: B007 (the tutorial's loop)
        for i, data in enumerate(trainloader, 0):  # noqa: B007
            inputs, labels = data
            inputs, labels = tensor(inputs), tensor(labels)
            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return np.array(losses)


def test_tutorial_runs_and_matches_pytorch():
    torch.manual_seed(0)
    transform = Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    trainset = shapes(train=True, n=240, transform=transform)
    batches = list(DataLoader(trainset, batch_size=4, shuffle=True))  # one fixed order for both

    net = Net()
    initial = {k: real_torch.tensor(v.numpy().copy()) for k, v in net.state_dict().items()}
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    ours = train(net, criterion, optimizer, batches, torch.tensor)

    ref_net = _torch_net()  # the same architecture in PyTorch, from the same weights
    ref_net.load_state_dict(initial)
    ref_opt = real_torch.optim.SGD(ref_net.parameters(), lr=0.001, momentum=0.9)
    theirs = train(ref_net, real_torch.nn.CrossEntropyLoss(), ref_opt, batches, real_torch.tensor)

    # float32 rounding differs between the two, and grows slowly over 120 steps
    np.testing.assert_allclose(ours, theirs, rtol=2e-3, atol=2e-4)
    assert ours[-20:].mean() < ours[:20].mean()  # and the loss falls


def _torch_net():
    tnn, tF = real_torch.nn, real_torch.nn.functional

    class TorchNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 6, 5)
            self.pool = tnn.MaxPool2d(2, 2)
            self.conv2 = tnn.Conv2d(6, 16, 5)
            self.fc1 = tnn.Linear(16 * 5 * 5, 120)
            self.fc2 = tnn.Linear(120, 84)
            self.fc3 = tnn.Linear(84, 4)

        def forward(self, x):
            x = self.pool(tF.relu(self.conv1(x)))
            x = self.pool(tF.relu(self.conv2(x)))
            x = real_torch.flatten(x, 1)
            x = tF.relu(self.fc1(x))
            x = tF.relu(self.fc2(x))
            return self.fc3(x)

    return TorchNet()
