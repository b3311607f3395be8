"""Known answers for the measures of recommended lists: diversity, coverage, popularity,
calibration and the NDCG of a re-ranked list."""

from __future__ import annotations

import math

import numpy as np
import pytest

from whyrec.metrics import (
    attribute_distribution,
    attribute_matrix,
    average_popularity,
    calibration_kl,
    catalogue_coverage,
    intra_list_diversity,
    list_ndcg,
)

# three items: two orthogonal, the third halfway between them (cos 0.7071 with each)
VECTORS = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def test_intra_list_diversity_by_hand() -> None:
    assert intra_list_diversity(np.array([[0, 1]]), VECTORS) == pytest.approx(1.0)  # orthogonal
    assert intra_list_diversity(np.array([[0, 0]]), VECTORS) == pytest.approx(0.0)  # the same item twice
    # pairs (0,1) cos 0, (0,2) and (1,2) cos 0.7071: 1 - 1.4142 / 3
    assert intra_list_diversity(np.array([[0, 1, 2]]), VECTORS) == pytest.approx(0.5285954792)
    # lists are averaged; a list of one item (empty slots -1) has no pairs and is left out
    lists = np.array([[0, 1, -1], [0, 2, -1], [1, -1, -1]])
    assert intra_list_diversity(lists, VECTORS) == pytest.approx((1.0 + (1 - 0.7071067812)) / 2)
    assert math.isnan(intra_list_diversity(np.array([[2, -1]]), VECTORS))


def test_coverage_and_average_popularity_by_hand() -> None:
    lists = np.array([[0, 1], [1, 2], [2, -1]])
    assert catalogue_coverage(lists, n_items=10) == pytest.approx(0.3)
    popularity = np.array([10.0, 0.0, 4.0])
    assert average_popularity(lists, popularity) == pytest.approx((5.0 + 2.0 + 4.0) / 3)
    assert math.isnan(average_popularity(np.array([[-1, -1]]), popularity))


def test_attribute_distributions_by_hand() -> None:
    matrix, names = attribute_matrix([("Comedy", "Action"), ("Action",), (), ("Action", "Action")])
    assert names == ["Action", "Comedy"]
    np.testing.assert_allclose(matrix, [[0.5, 0.5], [1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    mixes = attribute_distribution(matrix, [np.array([0, 1]), np.array([2]), np.array([0, 2, -1])])
    # items without attributes neither count nor dilute: [0, 2] has the mix of item 0 alone
    np.testing.assert_allclose(mixes, [[0.75, 0.25], [0.0, 0.0], [0.5, 0.5]])


def test_calibration_kl_by_hand() -> None:
    p = np.array([0.7, 0.3])
    assert calibration_kl(p, p) == pytest.approx(0.0)
    # q~ = 0.99 * 0.5 + 0.01 * p = (0.502, 0.498); 0.7 ln(0.7/0.502) + 0.3 ln(0.3/0.498)
    assert calibration_kl(p, np.array([0.5, 0.5])) == pytest.approx(0.0806908700)
    # a list without one of the user's attributes: finite thanks to the smoothing, and large
    assert calibration_kl(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == pytest.approx(1.9585177736)
    # the closer the mix, the smaller the divergence; rows are measured one by one
    rows = calibration_kl(p, np.array([[0.6, 0.4], [0.9, 0.1], [0.0, 1.0]]))
    assert rows.shape == (3,) and rows[0] < rows[1] < rows[2]
    with pytest.raises(ValueError, match="smoothing"):
        calibration_kl(p, p, smoothing=0.0)


def test_list_ndcg_by_hand() -> None:
    lists = np.array([[3, 1, 2], [4, 5, -1], [7, 8, 9]])
    ndcg = list_ndcg(lists, np.array([1, 4, 0]))
    np.testing.assert_allclose(ndcg, [1 / math.log2(3), 1.0, 0.0])
