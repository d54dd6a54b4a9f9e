"""metrics: the masked loss and the network's choice, defined once."""

import numpy as np
import torch

from decisionnets.metrics import choice_index, masked_cross_entropy, masked_cross_entropy_sum, n_correct_choices


def test_masked_cross_entropy_counts_only_masked_steps():
    logits = torch.tensor([[[5.0, 0.0, 0.0]], [[0.0, 2.0, 0.0]]])  # (time 2, batch 1, out 3)
    targets = torch.tensor([[1], [1]])
    mask = torch.tensor([[0.0], [1.0]])
    expected = -torch.log_softmax(logits[1, 0], 0)[1]  # only step 1 counts
    torch.testing.assert_close(masked_cross_entropy(logits, targets, mask), expected)
    torch.testing.assert_close(masked_cross_entropy_sum(logits, targets, mask), expected)
    assert float(masked_cross_entropy(logits, targets, torch.zeros_like(mask))) == 0.0  # no masked step


def test_choice_is_the_largest_choice_output_in_numpy_and_torch():
    at = np.array([[9.0, 1.0, 2.0], [9.0, 3.0, -1.0]], np.float32)  # output 0 (fixation) is not a choice
    np.testing.assert_array_equal(choice_index(at, [1, 2]), [1, 0])
    np.testing.assert_array_equal(choice_index(torch.from_numpy(at), torch.tensor([1, 2])).numpy(), [1, 0])


def test_training_accuracy_reads_the_choice_at_the_last_step():
    logits = torch.zeros(3, 2, 3)
    logits[-1, 0, 2] = 1.0  # trial 0 chooses action 2 (right), trial 1 action 1 (ties -> first)
    targets = torch.tensor([[0, 0], [0, 0], [2, 2]])
    assert int(n_correct_choices(logits, targets, torch.ones(3, 2), torch.tensor([1, 2]))) == 1
