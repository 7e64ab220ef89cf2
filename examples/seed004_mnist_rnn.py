"""Seed 004, "MNIST 구현": classify handwritten digits by reading their pixel rows with an RNN.

BasicRNNCell(128), dynamic_rnn, the last output through W, b, softmax cross-entropy, Adam.
The 28x28 MNIST files are not shipped by any installable package; this reads
scikit-learn's bundled 8x8 digits (8 rows of 8 pixels) instead.
"""

import sys

from rnnkit.apps.mnist_rows import train


def main(epochs=30):
    result = train(cell="rnn", n_hidden=128, epochs=epochs)
    print("최적화 완료!")
    print("정확도:", round(result.test_accuracy, 4))
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
