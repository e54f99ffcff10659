/// The likelihood estimators against probabilistic PCA, whose marginal likelihood and posterior are known exactly.
module Vae.Properties.LikelihoodProperties

open System
open Expecto
open TorchSharp
open Vae.Core
open Vae.Properties.Generators

/// A linear-Gaussian model p(z) = N(0, I), p(x|z) = N(W z + b, s^2 I) with orthogonal columns of W
/// (so that the exact posterior covariance is diagonal).
type Ppca = { W: Tensor; B: Tensor; Sigma: float }

let private ppca (seed: int64) (d: int) (scales: float[]) =
    let g = Torch.generator seed
    let q = torch.linalg.qr(torch.randn([| int64 d; int64 scales.Length |], dtype = f64, generator = g)) |> fun struct (q, _) -> q
    { W = q * torch.tensor(scales, dtype = f64); B = torch.randn([| int64 d |], dtype = f64, generator = g); Sigma = 0.5 }

/// Data drawn from the model: [n; D].
let private draw (m: Ppca) (n: int) (seed: int64) =
    let g = Torch.generator seed
    let z = torch.randn([| int64 n; m.W.shape.[1] |], dtype = f64, generator = g)
    z.matmul(m.W.t()) + m.B + torch.randn([| int64 n; m.W.shape.[0] |], dtype = f64, generator = g) * m.Sigma

/// log p(x, z) for latent points z [...; B; J] and data x [B; D].
let private logJoint (m: Ppca) (x: Tensor) (z: Tensor) =
    let mean = z.matmul(m.W.t()) + m.B
    let q : Distributions.DiagonalGaussian = { Mean = mean; LogVar = torch.full_like(mean, Torch.scalar (2.0 * Math.Log m.Sigma)) }
    Distributions.gaussianLogDensity q x + Distributions.standardNormalLogDensity z

/// The exact log p(x) = log N(x; b, W W^T + s^2 I) for x [B; D].
let private exactLogLikelihood (m: Ppca) (x: Tensor) =
    let d = m.W.shape.[0]
    let c = m.W.matmul(m.W.t()) + torch.eye(d, dtype = f64) * (m.Sigma * m.Sigma)
    let r = x - m.B
    let maha = (r.matmul(torch.linalg.inv c) * r).sum(-1L)
    let logDet = torch.logdet c
    (maha + logDet + Math.Log(2.0 * Math.PI) * float d) * -0.5

/// The exact posterior N(M^-1 W^T (x - b), s^2 M^-1) with M = W^T W + s^2 I (diagonal here).
let private exactPosterior (m: Ppca) (x: Tensor) : Distributions.DiagonalGaussian =
    let mDiag = (m.W * m.W).sum(0L) + m.Sigma * m.Sigma
    { Mean = (x - m.B).matmul(m.W) / mDiag; LogVar = (torch.full_like(mDiag, Torch.scalar (m.Sigma * m.Sigma)) / mDiag).log().expand(x.shape.[0], -1L) }

[<Tests>]
let tests =
    testList "likelihood (probabilistic PCA)" [
        testCase "HMC posterior samples match the exact posterior" <| fun () ->
            let m = ppca 1L 5 [| 2.0; 1.0 |]
            let x = draw m 1 2L
            let chains = 3000
            let xs = x.expand(int64 chains, -1L)
            let g = Torch.generator 3L
            let c = { MarginalLikelihood.paper with BurnIn = 100; PosteriorSamples = 1; Thinning = 30; Hmc = Hmc.paper }
            let z, _ = MarginalLikelihood.posteriorSamples c (logJoint m xs) (torch.randn([| int64 chains; 2L |], dtype = f64, generator = g)) g
            let z = z.squeeze(1L)
            let exact = exactPosterior m x
            let mean = z.mean([| 0L |]).data<double>().ToArray()
            let var = z.var(0L).data<double>().ToArray()
            let exactMean = exact.Mean.squeeze(0L).data<double>().ToArray()
            let exactVar = exact.LogVar.squeeze(0L).exp().data<double>().ToArray()
            for j in 0 .. 1 do
                Expect.isLessThan (abs (mean.[j] - exactMean.[j])) (5.0 * sqrt (exactVar.[j] / float chains)) (sprintf "posterior mean %d: %g vs %g" j mean.[j] exactMean.[j])
                Expect.isLessThan (abs (var.[j] / exactVar.[j] - 1.0)) 0.1 (sprintf "posterior variance %d: %g vs %g" j var.[j] exactVar.[j])

        testCase "the Appendix D estimator converges to the true log p(x)" <| fun () ->
            let m = ppca 4L 5 [| 1.5; 0.8 |]
            let x = draw m 40 5L
            let g = Torch.generator 6L
            let truth = exactLogLikelihood m x
            let c = { MarginalLikelihood.paper with PosteriorSamples = 400; Thinning = 3 }
            let est = MarginalLikelihood.estimate c (logJoint m x) (torch.randn([| 40L; 2L |], dtype = f64, generator = g)) g
            let err = (est - truth)
            let meanErr, maxErr = err.mean().ToDouble(), err.abs().max().ToDouble()
            Expect.isLessThan (abs meanErr) 0.1 (sprintf "mean error %g nats" meanErr)
            Expect.isLessThan maxErr 0.5 (sprintf "largest error %g nats" maxErr)
            // The paper's 50 samples per point: a rougher estimate of the same quantity.
            let rough = MarginalLikelihood.estimate MarginalLikelihood.paper (logJoint m x) (torch.randn([| 40L; 2L |], dtype = f64, generator = g)) g
            Expect.isLessThan (abs ((rough - truth).mean().ToDouble())) 0.5 "paper settings: mean error"

        testCase "Appendix D estimates again the datapoints whose chains have not mixed" <| fun () ->
            let m = ppca 4L 5 [| 1.5; 0.8 |]
            let x = draw m 40 5L
            let truth = exactLogLikelihood m x
            // No burn-in, small steps, chains started far from the posterior: the first pass samples chains in transit.
            let c = { MarginalLikelihood.paper with BurnIn = 0; PosteriorSamples = 200; InitialStepSize = 0.03 }
            let far = torch.full([| 40L; 2L |], Torch.scalar 15.0, dtype = f64)
            let once = MarginalLikelihood.estimate c (logJoint m x) far (Torch.generator 6L)
            let mixed, unmixed = MarginalLikelihood.estimateMixed c (fun rows -> logJoint m (x.index_select(0L, rows))) far (Torch.generator 6L)
            let onceErr, mixedErr = (once - truth).abs().max().ToDouble(), (mixed - truth).abs().max().ToDouble()
            Expect.isGreaterThan onceErr 2.0 (sprintf "one pass from far away should be off: largest error %g nats" onceErr)
            Expect.isLessThan mixedErr 0.7 (sprintf "with retries: largest error %g nats" mixedErr)
            Expect.isLessThan (abs ((mixed - truth).mean().ToDouble())) 0.15 "with retries: mean error"
            Expect.isFalse (unmixed.any().ToBoolean()) "every chain mixed after the retries"

        testCase "chains started at the best draw of q and the prior reach the posterior when q is far from it" <| fun () ->
            let m = ppca 4L 5 [| 1.5; 0.8 |]
            let x = draw m 40 5L
            let truth = exactLogLikelihood m x
            let exact = exactPosterior m x
            // An encoder that puts every datapoint near z = (15, 15), as a wrong or untrained one might: no draw of it is good.
            let far : Distributions.DiagonalGaussian =
                { Mean = torch.full([| 40L; 2L |], Torch.scalar 15.0, dtype = f64); LogVar = torch.full([| 40L; 2L |], Torch.scalar -4.0, dtype = f64) }
            let g = Torch.generator 6L
            let start = MarginalLikelihood.startingPoints (logJoint m x) far 500 g
            let standardised = (start - exact.Mean) / (exact.LogVar * 0.5).exp()
            Expect.isLessThan (standardised.abs().max().ToDouble()) 4.0 "every start within 4 posterior standard deviations"
            // Each start is the best candidate, so no worse by log p(x, z) than q's mean, which is among them.
            let gain = (logJoint m x start - logJoint m x far.Mean).min().ToDouble()
            Expect.isGreaterThanOrEqual gain 0.0 "no start is worse than q's mean"
            // Appendix D from those starts with no burn-in at all matches the exact log p(x).
            let c = { MarginalLikelihood.paper with BurnIn = 0; PosteriorSamples = 200 }
            let fromStart = MarginalLikelihood.estimate c (logJoint m x) start g
            let startErr = (fromStart - truth).abs().max().ToDouble()
            Expect.isLessThan startErr 0.7 (sprintf "from the chosen starts: largest error %g nats" startErr)
            Expect.isLessThan (abs ((fromStart - truth).mean().ToDouble())) 0.15 "from the chosen starts: mean error"

        testCase "the importance-weighted estimate converges to the true log p(x)" <| fun () ->
            let m = ppca 7L 5 [| 1.5; 0.8 |]
            let x = draw m 30 8L
            let g = Torch.generator 9L
            let truth = exactLogLikelihood m x
            let exact = exactPosterior m x
            // With the exact posterior as proposal every weight equals p(x): K = 1 is exact.
            let k1 = ImportanceWeighted.boundOf (logJoint m x) exact 1 1 g
            Expect.isLessThan ((k1 - truth).abs().max().ToDouble()) 1e-9 "exact proposal, K = 1"
            // A wrong proposal: the bound rises with K towards the truth.
            let off : Distributions.DiagonalGaussian = { Mean = exact.Mean + 0.5; LogVar = exact.LogVar + 0.7 }
            let bound k = (ImportanceWeighted.boundOf (logJoint m x) off k 1000 g - truth).mean().ToDouble()
            let b1, b10, b5000 = bound 1, bound 10, bound 5000
            Expect.isTrue (b1 < b10 && b10 < b5000) (sprintf "gaps %g, %g, %g should shrink" b1 b10 b5000)
            Expect.isLessThan (abs b5000) 0.05 (sprintf "K = 5000 gap %g nats" b5000)

        testCase "quadrature reaches the closed-form log p(x) of linear-Gaussian models, J = 1, 2 and 3, wide and narrow posteriors" <| fun () ->
            for j, sigma, seed in [ 1, 0.5, 11L; 2, 0.5, 12L; 3, 0.5, 13L; 2, 0.02, 14L; 3, 0.05, 15L ] do
                // A general W (not orthogonal): the posteriors are correlated, and with a small s far narrower than the
                // grid's first axes (the prior's).
                let g = Torch.generator seed
                let m = { W = torch.randn([| 6L; int64 j |], dtype = f64, generator = g) * 1.5; B = torch.randn([| 6L |], dtype = f64, generator = g); Sigma = sigma }
                let x = draw m 25 (seed + 100L)
                let truth = exactLogLikelihood m x
                let c = Quadrature.defaults
                let centre, l, settled = Quadrature.place c (logJoint m x) f64 (torch.zeros([| 25L; int64 j |], dtype = f64)) (torch.ones([| 25L; int64 j |], dtype = f64)) 6L
                Expect.isTrue (settled.all().ToBoolean()) (sprintf "J = %d, s = %g: every grid placed" j sigma)
                let est, change = Quadrature.integrate c (fun rows -> logJoint m (x.index_select(0L, rows))) f64 centre l 6L
                let err = (est - truth).abs().max().ToDouble()
                Expect.isLessThan err 0.01 (sprintf "J = %d, s = %g: largest error %g nats" j sigma err)
                Expect.isLessThan (change.max().ToDouble()) c.Tolerance (sprintf "J = %d, s = %g: every datapoint converged" j sigma)

        testCase "quadrature agrees with the importance-weighted estimate at large K on small Bernoulli models, in float64 and float32" <| fun () ->
            // Weights of scale 1 make p(x|z) far from linear in z; 8 pixels keep the prior a good proposal at K = 2·10^5.
            let config = { InputDim = 8; HiddenUnits = 6; LatentDim = 2; Likelihood = Bernoulli; DType = f64; InitStd = 1.0; HiddenLayers = 1 }
            let m = VaeModel.create config (Torch.generator 21L)
            let x = torch.bernoulli(torch.full([| 20L; 8L |], Torch.scalar 0.5, dtype = f64), generator = Torch.generator 22L)
            let exact, change = Quadrature.ofModel Quadrature.defaults m x (Torch.generator 23L)
            Expect.isLessThan (change.max().ToDouble()) Quadrature.defaults.Tolerance "every datapoint converged"
            let prior : Distributions.DiagonalGaussian = { Mean = torch.zeros([| 20L; 2L |], dtype = f64); LogVar = torch.zeros([| 20L; 2L |], dtype = f64) }
            let iwae = ImportanceWeighted.boundOf (VaeModel.logJoint m x) prior 200_000 20_000 (Torch.generator 24L)
            let err = (iwae - exact).abs().max().ToDouble()
            Expect.isLessThan err 0.02 (sprintf "largest difference from IWAE, K = 2e5: %g nats" err)
            // The float32 model (the fused evaluation kernels) integrates to the same values, within the tolerance (the two
            // may refine along different grids).
            let m32 = VaeModel.ofVector { config with DType = torch.float32 } (m.ParameterVector.to_type(torch.float32))
            let exact32, _ = Quadrature.ofModel Quadrature.defaults m32 (x.to_type(torch.float32)) (Torch.generator 23L)
            let err32 = (exact32 - exact).abs().max().ToDouble()
            Expect.isLessThan err32 Quadrature.defaults.Tolerance (sprintf "float32 against float64: %g nats" err32)

        testCase "quadrature finds a posterior mode in the prior's tail that the proposal misses, and integrates separate modes" <| fun () ->
            // log p(x, z) = log N(z; 0, 1) + log (0.2 N(z; 0.5, 0.02²) + 0.8·10⁴ N(z; 3.6, 0.02²)): the proposal sits on
            // the lesser mode, and 200 prior draws rarely come within reach of the other. The truth by brute force.
            let logJoint (z: Tensor) =
                let z = z.select(-1L, 0L)
                let peak (mu: float) (w: float) = (z - mu).square() / (-2.0 * 0.02 * 0.02) - Math.Log(0.02 * Math.Sqrt(2.0 * Math.PI)) + Math.Log w
                torch.stack([| peak 0.5 0.2; peak 3.6 8000.0 |]).logsumexp(0L) + Distributions.standardNormalLogDensity (z.unsqueeze(-1L))
            let fine = torch.linspace(-8.0, 8.0, 1_600_001L, dtype = f64)
            let truth = (logJoint (fine.view(-1L, 1L, 1L))).squeeze(1L).logsumexp(0L).ToDouble() + Math.Log(16.0 / 1_600_000.0)
            let q : Distributions.DiagonalGaussian = { Mean = torch.full([| 3L; 1L |], Torch.scalar 0.5, dtype = f64); LogVar = torch.full([| 3L; 1L |], Torch.scalar (2.0 * Math.Log 0.02), dtype = f64) }
            let est, change = Quadrature.logMarginal Quadrature.defaults logJoint (fun rows -> logJoint) q f64 1L (Torch.generator 3L)
            // The first grid is placed on the tail's mode (found by the search grid); the lesser mode holds 1.4 % of the
            // mass, beyond the tolerance, and gets a grid of its own.
            let err1 = (est - truth).abs().max().ToDouble()
            Expect.isLessThan err1 0.01 (sprintf "two modes: largest error %g nats (truth %g, estimates %A)" err1 truth (est.data<double>().ToArray()))
            Expect.isLessThan (change.max().ToDouble()) 0.01 "two modes: converged"
            // With the lesser mode 100 times lighter (0.014 % of the mass) the tail's mode alone is the integral.
            let logJoint2 (z: Tensor) =
                let z1 = z.select(-1L, 0L)
                let peak (mu: float) (w: float) = (z1 - mu).square() / (-2.0 * 0.02 * 0.02) - Math.Log(0.02 * Math.Sqrt(2.0 * Math.PI)) + Math.Log w
                torch.stack([| peak 0.5 0.002; peak 3.6 8000.0 |]).logsumexp(0L) + Distributions.standardNormalLogDensity z
            let truth2 = (logJoint2 (fine.view(-1L, 1L, 1L))).squeeze(1L).logsumexp(0L).ToDouble() + Math.Log(16.0 / 1_600_000.0)
            let est2, change2 = Quadrature.logMarginal Quadrature.defaults logJoint2 (fun rows -> logJoint2) q f64 1L (Torch.generator 3L)
            let err = (est2 - truth2).abs().max().ToDouble()
            Expect.isLessThan err 0.01 (sprintf "largest error %g nats (truth %g, estimates %A)" err truth2 (est2.data<double>().ToArray()))
            Expect.isLessThan (change2.max().ToDouble()) 0.01 "converged"

        testCase "quadrature integrates two narrow modes in three dimensions that a proposal misses" <| fun () ->
            // As training image 38 of the Figure 3 N = 50,000 model at step size 0.02 (docs/experiments/posterior-modes.fsx):
            // log p(x, z) = log N(z; 0, I) + log (0.78 N(z; a, S_a) + 0.22 N(z; b, S_b)) in three dimensions with standard
            // deviations of 0.06 to 0.14 and the proposal at (1.06, 1.37, -0.04), on neither mode. In closed form the
            // integral is 0.78 N(a; 0, I + S_a) + 0.22 N(b; 0, I + S_b).
            let modes = [ [| -0.72; 1.25; 0.58 |], [| 0.10; 0.07; 0.07 |], 0.78; [| 0.76; 1.63; 0.78 |], [| 0.14; 0.12; 0.06 |], 0.22 ]
            let logJoint (z: Tensor) =
                let peak (c: float[], sd: float[], w: float) =
                    let q : Distributions.DiagonalGaussian =
                        { Mean = torch.tensor(c, dtype = f64); LogVar = torch.tensor(sd |> Array.map (fun v -> 2.0 * log v), dtype = f64) }
                    Distributions.gaussianLogDensity q z + log w
                torch.stack([| for m in modes -> peak m |]).logsumexp(0L) + Distributions.standardNormalLogDensity z
            let truth =
                modes |> List.sumBy (fun (c, sd, w) ->
                    w * exp (Array.fold2 (fun acc ci si -> acc - 0.5 * (log (2.0 * Math.PI * (1.0 + si * si)) + ci * ci / (1.0 + si * si))) 0.0 c sd))
                |> log
            let q : Distributions.DiagonalGaussian =
                { Mean = torch.tensor([| 1.06; 1.37; -0.04 |], dtype = f64).unsqueeze(0L); LogVar = torch.full([| 1L; 3L |], Torch.scalar (2.0 * Math.Log 0.1), dtype = f64) }
            let est, change = Quadrature.logMarginal Quadrature.defaults logJoint (fun _ -> logJoint) q f64 1L (Torch.generator 3L)
            let err = (est - truth).abs().max().ToDouble()
            Expect.isLessThan err 0.01 (sprintf "error %g nats (truth %g, estimate %g)" err truth (est.ToDouble()))
            Expect.isLessThan (change.max().ToDouble()) 0.01 "converged"

        testCase "quadrature refuses more than three latent dimensions, naming J" <| fun () ->
            let m = VaeModel.create { InputDim = 4; HiddenUnits = 3; LatentDim = 4; Likelihood = Bernoulli; DType = f64; InitStd = 0.1; HiddenLayers = 1 } (Torch.generator 1L)
            let e = Expect.throwsC (fun () -> Quadrature.ofModel Quadrature.defaults m (torch.zeros([| 2L; 4L |], dtype = f64)) (Torch.generator 2L) |> ignore) id
            Expect.stringContains e.Message "J = 4" "the message names the model's J"
    ]
