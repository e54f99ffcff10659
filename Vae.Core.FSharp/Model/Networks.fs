namespace Vae.Core

open TorchSharp

/// An affine layer y = x W^T + b (W is [out; in]).
type Linear =
    { Weight: Tensor
      Bias: Tensor }

/// The affine layers of Appendix C's MLPs.
[<RequireQualifiedAccess>]
module Linear =

    /// A layer with every weight and bias drawn from N(0, std^2) (the paper: std 0.01 for all parameters).
    let init (inputs: int) (outputs: int) (std: float) (dtype: torch.ScalarType) (g: torch.Generator) : Linear =
        { Weight = torch.randn([| int64 outputs; int64 inputs |], dtype = dtype, generator = g).mul_(Torch.constant std)
          Bias = torch.randn([| int64 outputs |], dtype = dtype, generator = g).mul_(Torch.constant std) }

    /// x W^T + b over the last dimension of x.
    let apply (l: Linear) (x: Tensor) : Tensor = torch.nn.functional.linear (x, l.Weight, l.Bias)

/// Gaussian MLP (Appendix C.2): h = tanh(W3 x + b3); mean = W4 h + b4; log sigma^2 = W5 h + b5.
/// As the encoder q(z|x) its input is x; as a decoder p(x|z) its input is z. Deeper networks (Burda et al. 2015:
/// two tanh layers) apply further tanh layers to h before the heads.
type GaussianMlp =
    { /// The first tanh layer, fed by the input.
      Hidden: Linear
      /// The tanh layers after it, in order (none in the paper's networks).
      Deeper: Linear list
      Mean: Linear
      LogVar: Linear }

/// Bernoulli MLP (Appendix C.1): y = sigmoid(W2 tanh(W1 z + b1) + b2), kept as logits; deeper networks apply further
/// tanh layers before the output layer.
type BernoulliMlp =
    { /// The first tanh layer, fed by the input.
      Hidden: Linear
      /// The tanh layers after it, in order (none in the paper's networks).
      Deeper: Linear list
      Logits: Linear }

/// The tanh layers of an MLP.
[<RequireQualifiedAccess>]
module TanhLayers =

    /// Draws the first layer from inputs to hidden units and layers - 1 more of hidden units each (in that order).
    let init (layers: int) (inputs: int) (hidden: int) (std: float) dtype g : Linear * Linear list =
        let first = Linear.init inputs hidden std dtype g
        first, List.init (layers - 1) (fun _ -> Linear.init hidden hidden std dtype g)

    /// The last tanh layer's output for input x: tanh(W x + b) through the first layer, then each deeper one.
    let apply (first: Linear) (deeper: Linear list) (x: Tensor) : Tensor =
        deeper |> List.fold (fun h l -> (Linear.apply l h).tanh()) ((Linear.apply first x).tanh())

[<RequireQualifiedAccess>]
module GaussianMlp =

    /// A Gaussian MLP from inputs through layers tanh layers of hidden units to a mean and a log-variance of outputs
    /// values (drawn in that order).
    let init (layers: int) (inputs: int) (hidden: int) (outputs: int) (std: float) dtype g : GaussianMlp =
        let first, deeper = TanhLayers.init layers inputs hidden std dtype g
        { Hidden = first
          Deeper = deeper
          Mean = Linear.init hidden outputs std dtype g
          LogVar = Linear.init hidden outputs std dtype g }

    /// The MLP's last tanh layer for input x.
    let hidden (p: GaussianMlp) (x: Tensor) : Tensor = TanhLayers.apply p.Hidden p.Deeper x

    /// The Gaussian the MLP outputs for input x; with sigmoidMean the mean is squashed into (0, 1)
    /// (the paper's Frey Face decoder).
    let apply (sigmoidMean: bool) (p: GaussianMlp) (x: Tensor) : Distributions.DiagonalGaussian =
        let h = hidden p x
        let mean = Linear.apply p.Mean h
        { Mean = (if sigmoidMean then mean.sigmoid() else mean); LogVar = Linear.apply p.LogVar h }

[<RequireQualifiedAccess>]
module BernoulliMlp =

    /// A Bernoulli MLP from inputs through layers tanh layers of hidden units to outputs logits (drawn in that order).
    let init (layers: int) (inputs: int) (hidden: int) (outputs: int) (std: float) dtype g : BernoulliMlp =
        let first, deeper = TanhLayers.init layers inputs hidden std dtype g
        { Hidden = first
          Deeper = deeper
          Logits = Linear.init hidden outputs std dtype g }

    /// The MLP's last tanh layer for input z.
    let hidden (p: BernoulliMlp) (z: Tensor) : Tensor = TanhLayers.apply p.Hidden p.Deeper z

    /// The logits of p(x|z).
    let logits (p: BernoulliMlp) (z: Tensor) : Tensor = Linear.apply p.Logits (hidden p z)

/// A linear-Gaussian decoder p(x|z) = N(W z + b, diag exp(logVar)): factor analysis (probabilistic PCA
/// when the variances are equal). Its marginal p(x) = N(b, W W^T + diag exp(logVar)) is known in closed
/// form, so learners can be checked against the true log-likelihood.
type LinearGaussian =
    { Mean: Linear
      /// One log-variance per output dimension [D].
      LogVar: Tensor }

[<RequireQualifiedAccess>]
module LinearGaussian =

    /// A decoder from latent to outputs dimensions with every parameter drawn from N(0, std^2).
    let init (latent: int) (outputs: int) (std: float) (dtype: torch.ScalarType) (g: torch.Generator) : LinearGaussian =
        { Mean = Linear.init latent outputs std dtype g
          LogVar = torch.randn([| int64 outputs |], dtype = dtype, generator = g).mul_(Torch.constant std) }

    /// The Gaussian p(x|z) for latent points z (any leading dimensions).
    let apply (p: LinearGaussian) (z: Tensor) : Distributions.DiagonalGaussian =
        let mean = Linear.apply p.Mean z
        { Mean = mean; LogVar = p.LogVar.expand_as(mean) }

    /// The exact log p(x) = log N(x; b, W W^T + diag exp(logVar)) of data x [N; D] under the prior
    /// p(z) = N(0, I), computed in float64 by a Cholesky factorisation. Returns [N].
    let logMarginal (p: LinearGaussian) (x: Tensor) : Tensor =
        let f64 = torch.float64
        let w = p.Mean.Weight.detach().to_type(f64)
        let d = w.shape.[0]
        let cov = w.matmul(w.t()) + torch.diag(p.LogVar.detach().to_type(f64).exp())
        let chol = torch.linalg.cholesky(cov)
        let r = (x.to_type(f64) - p.Mean.Bias.detach().to_type(f64)).t()                  // [D; N]
        let solved = torch.linalg.solve_triangular(chol, r, upper = false)
        let maha = (solved * solved).sum(0L)
        let logDet = chol.diagonal().log().sum() * 2.0
        ((maha + logDet) + System.Math.Log(2.0 * System.Math.PI) * float d) * -0.5
