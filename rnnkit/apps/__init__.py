"""The seed programs as applications: char-RNN, MNIST rows, translation."""
