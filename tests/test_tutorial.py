"""PyTorch's "Training a classifier" tutorial, with only the imports changed.

The shape of https://pytorch.org/tutorials/beginner/blitz/cifar10_tutorial.html: an
``nn.Module`` subclass with conv, pool and linear layers, ``CrossEntropyLoss``,
``SGD(lr=0.001, momentum=0.9)``, batches of 4 and the zero_grad / forward / backward / step
loop. The class and the loop below are the tutorial's code; only the imports differ.

* On shapes, the same code then runs in PyTorch from the same initial weights on the same
  batches, and the two loss trajectories must agree.
* On scikit-learn's digits, the whole tutorial -- ``TensorDataset`` and ``DataLoader`` from
  ``minicnn.utils.data``, training, ``torch.save``/``torch.load`` of the weights, and the
  evaluation with ``torch.max(outputs.data, 1)`` -- runs unchanged and must reach an
  accuracy far above chance.
"""

import numpy as np
import torch as real_torch

import minicnn as torch  # the only change: the imports
import minicnn.nn as nn
import minicnn.nn.functional as F
import minicnn.optim as optim
from minicnn.data import DataLoader, shapes
from minicnn.data.transforms import Normalize
from minicnn.utils.data import DataLoader as TensorLoader
from minicnn.utils.data import TensorDataset


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


class DigitsNet(nn.Module):
    """The tutorial's network, sized for 8x8 one-channel digits."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3)  # 8x8 -> 6x6
        self.pool = nn.MaxPool2d(2, 2)  # -> 3x3
        self.conv2 = nn.Conv2d(6, 16, 2)  # -> 2x2
        self.fc1 = nn.Linear(16 * 2 * 2, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = self.pool(x)
        x = F.relu(self.conv2(x))
        x = torch.flatten(x, 1)  # flatten all dimensions except batch
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


def test_the_whole_tutorial_on_a_tensor_dataset(tmp_path):
    from sklearn.datasets import load_digits

    DataLoader = TensorLoader  # noqa: N806  (the tutorial's name, from minicnn.utils.data)
    digits = load_digits()
    images = ((digits.images / 16.0 - 0.5) / 0.5).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    targets = digits.target.astype(np.int64)
    classes = tuple(str(d) for d in range(10))
    torch.manual_seed(0)
    trainset = TensorDataset(torch.tensor(images[:1400]), torch.tensor(targets[:1400]))
    testset = TensorDataset(torch.tensor(images[1400:]), torch.tensor(targets[1400:]))
    # batches of 8 and lr=0.02 (the tutorial: 4 and 0.001) learn digits in two short epochs
    trainloader = DataLoader(trainset, batch_size=8, shuffle=True)
    testloader = DataLoader(testset, batch_size=8, shuffle=False)

    # ---- from here on, the tutorial's code
    net = DigitsNet()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.02, momentum=0.9)

    epoch_losses = []
    for epoch in range(2):  # loop over the dataset multiple times  # noqa: B007
        running_loss = 0.0
        for i, data in enumerate(trainloader, 0):  # noqa: B007
            # get the inputs; data is a list of [inputs, labels]
            inputs, labels = data
            # zero the parameter gradients
            optimizer.zero_grad()
            # forward + backward + optimize
            outputs = net(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        epoch_losses.append(running_loss / (i + 1))

    PATH = tmp_path / "digits_net.pth"  # noqa: N806
    torch.save(net.state_dict(), PATH)

    dataiter = iter(testloader)
    images_batch, labels = next(dataiter)
    net = DigitsNet()
    net.load_state_dict(torch.load(PATH, weights_only=True))
    outputs = net(images_batch)
    _, predicted = torch.max(outputs, 1)
    assert [classes[predicted[j]] for j in range(4)]  # classes indexed by 0-d tensors

    correct = 0
    total = 0
    # since we're not training, we don't need to calculate the gradients for our outputs
    with torch.no_grad():
        for data in testloader:
            images_batch, labels = data
            # calculate outputs by running images through the network
            outputs = net(images_batch)
            # the class with the highest energy is what we choose as prediction
            _, predicted = torch.max(outputs.data, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    accuracy = 100 * correct // total

    correct_pred = {classname: 0 for classname in classes}
    total_pred = {classname: 0 for classname in classes}
    with torch.no_grad():
        for data in testloader:
            images_batch, labels = data
            outputs = net(images_batch)
            _, predictions = torch.max(outputs, 1)
            # collect the correct predictions for each class
            for label, prediction in zip(labels, predictions, strict=True):
                if label == prediction:
                    correct_pred[classes[label]] += 1
                total_pred[classes[label]] += 1
    # ---- end of the tutorial's code

    assert total == len(testset) == 397 and type(correct) is int
    assert epoch_losses[1] < epoch_losses[0] < np.log(10)  # it learns
    assert accuracy >= 75, accuracy  # chance is 10 %; seeds 0-2 give 83-86 %
    assert sum(correct_pred.values()) == correct and sum(total_pred.values()) == total
    np.testing.assert_array_equal(
        [total_pred[c] for c in classes], np.bincount(targets[1400:], minlength=10)
    )
