namespace Vae.Core

open System
open TorchSharp

/// The decoder's likelihood p(x|z).
type Likelihood =
    /// Bernoulli MLP (binary or [0, 1] data: MNIST).
    | Bernoulli
    /// Gaussian MLP with an unconstrained mean.
    | Gaussian
    /// Gaussian MLP whose mean is squashed into (0, 1) by a sigmoid (the paper's Frey Face decoder).
    | GaussianSigmoidMean
    /// Linear-Gaussian decoder N(W z + b, diag sigma^2) (factor analysis): no hidden layer, and an exact
    /// marginal likelihood (LinearGaussian.logMarginal) for checking learners.
    | LinearGaussian

/// The architecture of a model: sizes, likelihood, precision.
type ModelConfig =
    { /// Values per datapoint (784 for MNIST, 560 for Frey Face).
      InputDim: int
      /// Hidden units of every MLP (500 MNIST, 200 Frey Face, 100 for Figure 3).
      HiddenUnits: int
      /// Latent dimensions J.
      LatentDim: int
      Likelihood: Likelihood
      /// float32 or float64.
      DType: torch.ScalarType
      /// Standard deviation of the initial parameters (the paper: 0.01).
      InitStd: float }

/// The decoder network.
type Decoder =
    | BernoulliDecoder of BernoulliMlp
    | GaussianDecoder of GaussianMlp
    | LinearGaussianDecoder of LinearGaussian

/// A variational auto-encoder: recognition model q_phi(z|x) (encoder), generative model
/// p_theta(x|z) (decoder) and the prior p(z) = N(0, I).
type VaeModel =
    { Config: ModelConfig
      Encoder: GaussianMlp
      Decoder: Decoder }

/// A named parameter tensor; IsWeight says whether the N(0, I) weight prior applies (weights, not biases).
type NamedParameter = { Name: string; Tensor: Tensor; IsWeight: bool }

[<RequireQualifiedAccess>]
module VaeModel =

    /// Checks a configuration; raises ArgumentException naming the field.
    let validate (c: ModelConfig) =
        let fail field expected (v: obj) = raise (ArgumentException(sprintf "model %s: expected %s, got %O" field expected v))
        if c.InputDim < 1 then fail "input dimension" "at least 1" c.InputDim
        if c.HiddenUnits < 1 then fail "hidden units" "at least 1" c.HiddenUnits
        if c.LatentDim < 1 then fail "latent dimensions" "at least 1" c.LatentDim
        if c.DType <> torch.float32 && c.DType <> torch.float64 then fail "dtype" "float32 or float64" c.DType
        if not (c.InitStd > 0.0) then fail "initial standard deviation" "a positive number" c.InitStd

    /// The names and shapes of a configuration's parameters, in the order of parameters, computed
    /// without allocating anything (checkpoint readers check a file against them first).
    let parameterShapes (c: ModelConfig) : (string * int64[]) list =
        let d, h, j = int64 c.InputDim, int64 c.HiddenUnits, int64 c.LatentDim
        let linear prefix inputs outputs = [ prefix + ".weight", [| outputs; inputs |]; prefix + ".bias", [| outputs |] ]
        let gaussian prefix inputs outputs =
            linear (prefix + ".hidden") inputs h @ linear (prefix + ".mean") h outputs @ linear (prefix + ".logvar") h outputs
        gaussian "encoder" d j
        @ (match c.Likelihood with
           | Bernoulli -> linear "decoder.hidden" j h @ linear "decoder.logits" h d
           | Gaussian | GaussianSigmoidMean -> gaussian "decoder" j d
           | LinearGaussian -> linear "decoder.mean" j d @ [ "decoder.logvar", [| d |] ])

    /// A model with every parameter drawn from N(0, InitStd^2) using generator g.
    let create (c: ModelConfig) (g: torch.Generator) : VaeModel =
        validate c
        let encoder = GaussianMlp.init c.InputDim c.HiddenUnits c.LatentDim c.InitStd c.DType g
        let decoder =
            match c.Likelihood with
            | Bernoulli -> BernoulliDecoder(BernoulliMlp.init c.LatentDim c.HiddenUnits c.InputDim c.InitStd c.DType g)
            | Gaussian | GaussianSigmoidMean -> GaussianDecoder(GaussianMlp.init c.LatentDim c.HiddenUnits c.InputDim c.InitStd c.DType g)
            | LinearGaussian -> LinearGaussianDecoder(LinearGaussian.init c.LatentDim c.InputDim c.InitStd c.DType g)
        { Config = c; Encoder = encoder; Decoder = decoder }

    let private linear (prefix: string) (l: Linear) =
        [ { Name = prefix + ".weight"; Tensor = l.Weight; IsWeight = true }
          { Name = prefix + ".bias"; Tensor = l.Bias; IsWeight = false } ]

    let private gaussian prefix (p: GaussianMlp) =
        linear (prefix + ".hidden") p.Hidden @ linear (prefix + ".mean") p.Mean @ linear (prefix + ".logvar") p.LogVar

    /// The encoder's parameters phi, in a fixed order.
    let encoderParameters (m: VaeModel) : NamedParameter list = gaussian "encoder" m.Encoder

    /// The decoder's parameters theta, in a fixed order.
    let decoderParameters (m: VaeModel) : NamedParameter list =
        match m.Decoder with
        | BernoulliDecoder p -> linear "decoder.hidden" p.Hidden @ linear "decoder.logits" p.Logits
        | GaussianDecoder p -> gaussian "decoder" p
        | LinearGaussianDecoder p -> linear "decoder.mean" p.Mean @ [ { Name = "decoder.logvar"; Tensor = p.LogVar; IsWeight = false } ]

    /// Every parameter (encoder, then decoder), in a fixed order.
    let parameters (m: VaeModel) : NamedParameter list = encoderParameters m @ decoderParameters m

    /// The parameter tensors, in the order of parameters.
    let tensors (m: VaeModel) : Tensor[] = parameters m |> List.map (fun p -> p.Tensor) |> List.toArray

    /// Makes every parameter a leaf that records gradients (or stops recording).
    let requireGrad (on: bool) (m: VaeModel) : VaeModel =
        for t in tensors m do t.requires_grad_(on) |> ignore
        m

    /// A deep copy of the model's parameters (detached).
    let copy (m: VaeModel) : VaeModel =
        let c (l: Linear) = { Weight = l.Weight.detach().clone(); Bias = l.Bias.detach().clone() }
        let g (p: GaussianMlp) = { Hidden = c p.Hidden; Mean = c p.Mean; LogVar = c p.LogVar }
        { m with
            Encoder = g m.Encoder
            Decoder =
                match m.Decoder with
                | BernoulliDecoder p -> BernoulliDecoder { Hidden = c p.Hidden; Logits = c p.Logits }
                | GaussianDecoder p -> GaussianDecoder(g p)
                | LinearGaussianDecoder p -> LinearGaussianDecoder { Mean = c p.Mean; LogVar = p.LogVar.detach().clone() } }

    /// q_phi(z|x): the encoder's Gaussian for data x.
    let encode (m: VaeModel) (x: Tensor) : Distributions.DiagonalGaussian = GaussianMlp.apply false m.Encoder x

    /// The Gaussian p(x|z) of a Gaussian decoder (MLP or linear) for latent points z.
    let private gaussianOf (m: VaeModel) (z: Tensor) : Distributions.DiagonalGaussian =
        match m.Decoder with
        | GaussianDecoder p -> GaussianMlp.apply (m.Config.Likelihood = GaussianSigmoidMean) p z
        | LinearGaussianDecoder p -> LinearGaussian.apply p z
        | BernoulliDecoder _ -> invalidOp "a Bernoulli decoder has no Gaussian output"

    /// log p_theta(x|z), summed over the data dimension; z may carry extra leading sample dimensions.
    let logLikelihood (m: VaeModel) (z: Tensor) (x: Tensor) : Tensor =
        match m.Decoder with
        | BernoulliDecoder p -> Distributions.bernoulliLogProbability (BernoulliMlp.logits p z) x
        | GaussianDecoder _ | LinearGaussianDecoder _ -> Distributions.gaussianLogDensity (gaussianOf m z) x

    /// The decoder's mean E[x|z] (Bernoulli probabilities or Gaussian means).
    let decodeMean (m: VaeModel) (z: Tensor) : Tensor =
        match m.Decoder with
        | BernoulliDecoder p -> (BernoulliMlp.logits p z).sigmoid()
        | GaussianDecoder _ | LinearGaussianDecoder _ -> (gaussianOf m z).Mean

    /// Draws x ~ p(x|z) for latent points z: Bernoulli draws, or Gaussian draws (clipped to [0, 1] for the
    /// sigmoid-mean decoder, as the paper's code clips the samples of its DLVM models; the means are not clipped).
    let sampleData (m: VaeModel) (z: Tensor) (g: torch.Generator) : Tensor =
        match m.Decoder with
        | BernoulliDecoder p -> torch.bernoulli((BernoulliMlp.logits p z).sigmoid(), generator = g)
        | GaussianDecoder _ | LinearGaussianDecoder _ ->
            let q = gaussianOf m z
            let x = q.Mean + (q.LogVar * 0.5).exp() * torch.randn(q.Mean.shape, dtype = q.Mean.dtype, generator = g)
            if m.Config.Likelihood = GaussianSigmoidMean then x.clamp(Torch.constant 0.0, Torch.constant 1.0) else x

    /// The exact log p(x) per datapoint of data x [N; D] for a linear-Gaussian decoder (float64, no
    /// gradient); other decoders have no closed form and raise InvalidOperationException.
    let exactLogLikelihood (m: VaeModel) (x: Tensor) : Tensor =
        match m.Decoder with
        | LinearGaussianDecoder p -> LinearGaussian.logMarginal p x
        | _ -> invalidOp "the exact log-likelihood is known only for the linear-Gaussian decoder"

    /// log p(x, z) = log p(x|z) + log p(z) for latent points z with leading sample dimensions.
    let logJoint (m: VaeModel) (x: Tensor) (z: Tensor) : Tensor =
        logLikelihood m z x + Distributions.standardNormalLogDensity z

    /// log p(theta) of the N(0, I) prior over the weights (not biases) of the given parameters (constants dropped).
    let logPriorOf (ps: NamedParameter list) : Tensor =
        ps |> List.filter (fun p -> p.IsWeight) |> List.map (fun p -> (p.Tensor * p.Tensor).sum() * -0.5) |> List.reduce (+)
