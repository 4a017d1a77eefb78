"""Methods on the generator's range: projection (Alg. 1 step 1), the min-max search (eq. 9),
divergences between classifier outputs.

* :mod:`tf_inc.manifold.inversion` — :func:`project`, :class:`Projector`, :class:`InversionConfig`;
* :mod:`tf_inc.manifold.minmax` — :class:`MinMaxAttack`, :class:`MinMaxConfig`, the latent-space attack;
* :mod:`tf_inc.manifold.divergences` — sym-CE / ℓ2 / sym-KL and the pair metrics;
* :mod:`tf_inc.manifold.natural` — natural adversaries (Zhao et al.): latent search for a label change.
"""
from tf_inc.manifold.inversion import (  # noqa: F401
    InversionConfig,
    InversionResult,
    Projector,
    project,
)
from tf_inc.manifold.minmax import (  # noqa: F401
    MinMaxAttack,
    MinMaxConfig,
    PairResult,
    latent_space_attack,
)
from tf_inc.manifold.natural import (  # noqa: F401
    NaturalAdversaryConfig,
    NaturalAdversaryResult,
    NaturalAdversarySearch,
    natural_adversaries,
)
