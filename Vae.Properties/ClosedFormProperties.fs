/// The lower bound against closed forms on factor analysis (a linear-Gaussian decoder, J-dimensional N(0, I) prior),
/// where log p(x), the ELBO and the posterior p(z|x) are all Gaussian integrals: the estimators' expectations, their
/// gradients' expectations (unbiasedness) and the bound's gap, each checked in float64 against an independent formula.
module Vae.Properties.ClosedFormProperties

open Expecto
open TorchSharp
open Vae.Core
open Vae.Properties.Generators

let private item (t: Tensor) = t.item<double> ()

/// Factor analysis with a random MLP encoder (a poor q(z|x), so the bound's gap is wide).
let private factorAnalysis (seed: int64) (d: int) (h: int) (j: int) =
    VaeModel.create { InputDim = d; HiddenUnits = h; LatentDim = j; Likelihood = LinearGaussian; DType = f64; InitStd = 0.7; HiddenLayers = 1 } (Torch.generator seed)

/// KL(q(z|x) || p(z|x)) per datapoint from the exact posterior of factor analysis: p(z|x) = N(m, Λ⁻¹) with precision
/// Λ = I + Wᵀ S⁻¹ W and mean m = Λ⁻¹ Wᵀ S⁻¹ (x − b), S = diag(s²); between Gaussians,
/// KL = ½ [tr(Λ Σ_q) + (m − μ)ᵀ Λ (m − μ) − J − log det Λ − Σ_j log σ²_j]. It uses neither the marginal p(x) (a D×D
/// covariance, VaeModel.exactLogLikelihood) nor the ELBO's expectation (closedFormElbo).
let private klToPosterior (m: VaeModel) (x: Tensor) : Tensor =
    let p = match m.Decoder with LinearGaussianDecoder p -> p | _ -> failwith "a linear-Gaussian decoder"
    let w, b, s2 = p.Mean.Weight, p.Mean.Bias, p.LogVar.exp().reshape(-1L)
    let j = w.shape.[1]
    let precision = w.t().mm(w / s2.unsqueeze(1L)) + torch.eye(j, dtype = f64)
    let mean = ((x - b) / s2).mm(w).mm(torch.linalg.inv precision)
    let q = VaeModel.encode m x
    let diff = mean - q.Mean
    let trace = (q.LogVar.exp() * precision.diagonal()).sum(-1L)
    let quadratic = (diff.mm(precision) * diff).sum(-1L)
    (trace + quadratic - float j - torch.linalg.cholesky(precision).diagonal().log().sum() * 2.0 - q.LogVar.sum(-1L)) * 0.5

/// Each parameter's gradient of a scalar, flattened and joined in VaeModel.tensors' order.
let private gradientOf (m: VaeModel) (value: Tensor) : Tensor =
    torch.cat(torch.autograd.grad([| value |], VaeModel.tensors m) |> Seq.map (fun t -> t.flatten()) |> Seq.toArray, 0L)

/// The mean of per-draw gradients and its standard error per coordinate.
let private meanGradient (draws: int) (draw: unit -> Tensor) : Tensor * Tensor =
    let all = torch.stack([| for _ in 1 .. draws -> draw () |], 0L)
    all.mean([| 0L |]), all.std(0L) / sqrt (float draws)

[<Tests>]
let tests =
    testList "closed forms" [
        testPropertyWithConfig (config 10) "log p(x) − ELBO equals KL(q(z|x) || p(z|x)) from the exact posterior (three closed forms agree)" <| fun (seed: int) ->
            use _ = torch.NewDisposeScope()
            let m = factorAnalysis (int64 seed) 5 6 (1 + abs seed % 3)
            let x = torch.randn([| 7L; 5L |], dtype = f64, generator = Torch.generator (int64 seed + 1L)) * 1.5
            let gap = VaeModel.exactLogLikelihood m x - closedFormElbo m x
            let kl = klToPosterior m x
            item ((gap - kl).abs().max()) <= 1e-9 * (1.0 + item (kl.abs().max())) && item (kl.min()) > 0.0

        for estimator in [ A; B ] do
            testCase (sprintf "estimator %A's expectation is the closed-form ELBO, and so is its gradient's (unbiased, every parameter)" estimator) <| fun () ->
                use _ = torch.NewDisposeScope()
                let m = factorAnalysis 41L 4 5 2 |> VaeModel.requireGrad true
                let x = torch.randn([| 6L; 4L |], dtype = f64, generator = Torch.generator 42L)
                let g = Torch.generator 43L
                let truth = closedFormElbo m x
                let truthValue, truthGradient = item (truth.sum()), gradientOf m (truth.sum())
                let estimate (eps: Tensor) = (ElboEstimator.ofKind estimator m x eps).sum()
                let values = ResizeArray<float>()
                let meanG, se = meanGradient 4000 (fun () ->
                    let v = estimate (ElboEstimator.noise 1 6 m g)
                    values.Add(item v)
                    gradientOf m v)
                let mean = Seq.average values
                let valueSe = sqrt ((values |> Seq.sumBy (fun v -> (v - mean) ** 2.0)) / float (values.Count - 1) / float values.Count)
                Expect.isLessThan (abs (mean - truthValue)) (5.0 * valueSe + 1e-9) (sprintf "value: %.5f against %.5f (SE %.5f)" mean truthValue valueSe)
                let z = ((meanG - truthGradient).abs() / (se + 1e-12)).max() |> item
                Expect.isLessThan z 5.0 (sprintf "the largest deviation of a mean gradient coordinate from the closed form is %.2f standard errors" z)
                // The check has the power to see a bias: noise scaled by 0.8 (q's spread misread) moves some coordinate
                // of the mean gradient far outside its standard errors.
                let biasedG, biasedSe = meanGradient 4000 (fun () -> gradientOf m (estimate (ElboEstimator.noise 1 6 m g * 0.8)))
                let zBiased = ((biasedG - truthGradient).abs() / (biasedSe + 1e-12)).max() |> item
                Expect.isGreaterThan zBiased 10.0 (sprintf "a biased noise scale is seen: %.2f standard errors" zBiased)
    ]
