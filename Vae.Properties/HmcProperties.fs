/// Properties of the HMC sampler: the leapfrog integrator's geometry and the sampler's distribution.
module Vae.Properties.HmcProperties

open System
open Expecto
open FsCheck
open TorchSharp
open Vae.Core
open Vae.Properties.Generators

let private t (xs: float[]) = torch.tensor(xs, dtype = f64)

/// log N(z; 0, S) (up to a constant) for a 2-D covariance S given by its inverse P: -z^T P z / 2.
let private gaussian2 (precision: float[,]) =
    let p = torch.tensor(precision, dtype = f64)
    fun (z: Tensor) -> ((z.matmul(p)) * z).sum(-1L) * -0.5

let private correlated rho =
    let d = 1.0 - rho * rho
    array2D [ [ 1.0 / d; -rho / d ]; [ -rho / d; 1.0 / d ] ]

/// The banana: x ~ N(0, 1), y | x ~ N(b x^2, 1); E[y] = b, Var[y] = 1 + 2 b^2.
let private banana (b: float) (z: Tensor) : Tensor =
    let x, y = z.select(-1L, 0L), z.select(-1L, 1L)
    let r = y - x * x * b
    (x * x + r * r) * -0.5

/// Runs chains from N(0, I): adaptation while burning in, then a fixed step size; returns the final positions.
let private sample logDensity chains burnIn steps (seed: int64) =
    let g = Torch.generator seed
    let mutable z = torch.randn([| int64 chains; 2L |], dtype = f64, generator = g)
    let mutable eps = 0.1
    for i in 1 .. burnIn + steps do
        use _ = torch.NewDisposeScope()
        let s = Hmc.step Hmc.paper (i <= burnIn) logDensity z eps g
        z <- s.Positions.MoveToOuterDisposeScope()
        eps <- s.StepSize
    z, eps

let private within (label: string) (actual: float) (expected: float) (tolerance: float) =
    Expect.isLessThan (abs (actual - expected)) tolerance (sprintf "%s: %g, expected %g" label actual expected)

[<Tests>]
let tests =
    testList "hmc" [
        testPropertyWithConfig (config 20) "leapfrog is time-reversible to rounding" <| fun (seed: int) (steps: PositiveInt) ->
            use _ = torch.NewDisposeScope()
            let g = Torch.generator (int64 seed)
            let z0 = torch.randn([| 5L; 2L |], dtype = f64, generator = g)
            let p0 = torch.randn([| 5L; 2L |], dtype = f64, generator = g)
            let f = banana 0.5
            let eps = t [| 0.05 |]
            let n = 1 + steps.Get % 30
            let z1, p1, _, _ = Hmc.leapfrog f z0 p0 eps n
            let z2, p2, _, _ = Hmc.leapfrog f z1 (-p1) eps n
            (z2 - z0).abs().max().ToDouble() < 1e-10 && (p2 + p0).abs().max().ToDouble() < 1e-10

        testPropertyWithConfig (config 10) "leapfrog preserves volume (Jacobian determinant 1)" <| fun (seed: int) ->
            use _ = torch.NewDisposeScope()
            let g = Torch.generator (int64 seed)
            let x0 = torch.randn([| 4L |], dtype = f64, generator = g).data<double>().ToArray()
            let f = banana 0.3
            let map (x: float[]) =
                let z, p, _, _ = Hmc.leapfrog f (t x.[0..1] |> fun v -> v.unsqueeze(0L)) (t x.[2..3] |> fun v -> v.unsqueeze(0L)) (t [| 0.1 |]) 7
                torch.cat([| z; p |], 1L).squeeze(0L).data<double>().ToArray()
            let h = 1e-6
            let jacobian =
                Array2D.init 4 4 (fun i j ->
                    let up, down = Array.copy x0, Array.copy x0
                    up.[j] <- up.[j] + h
                    down.[j] <- down.[j] - h
                    ((map up).[i] - (map down).[i]) / (2.0 * h))
            let det = torch.linalg.det(torch.tensor(jacobian, dtype = f64)).ToDouble()
            abs (det - 1.0) < 1e-6

        testCase "energy error shrinks as the step size squared" <| fun () ->
            let f = gaussian2 (correlated 0.8)
            let z0, p0 = torch.tensor(array2D [ [ 1.0; -0.5 ] ], dtype = f64), torch.tensor(array2D [ [ 0.3; 0.9 ] ], dtype = f64)
            let energyError (eps: float) =
                // The same trajectory length: steps x eps = 1.
                let z, p, logP, _ = Hmc.leapfrog f z0 p0 (t [| eps |]) (int (Math.Round(1.0 / eps)))
                let h (z: Tensor) (p: Tensor) = -(f z).ToDouble() + 0.5 * (p * p).sum().ToDouble()
                abs (h z p - h z0 p0)
            let ratio = energyError 0.1 / energyError 0.05
            Expect.isTrue (ratio > 3.0 && ratio < 5.0) (sprintf "halving the step size divided the energy error by %g, expected about 4" ratio)

        testCase "the Metropolis correction makes a coarse leapfrog exact: N(0, 1) where the unadjusted chain has variance 1 / (1 - eps^2 / 4)" <| fun () ->
            // At eps = 1.5 the leapfrog conserves H' = p^2 / 2 + (1 - eps^2 / 4) q^2 / 2 rather than H, so without the
            // accept/reject step the chain samples exp(-H'): variance 2.29. With it, exactly N(0, 1).
            use _ = torch.NewDisposeScope()
            let chains, e = 20000, 1.5
            let c = { Hmc.paper with LeapfrogSteps = 3; RandomSign = false }
            let target (z: Tensor) = (z * z).sum(-1L) * -0.5
            let g = Torch.generator 11L
            let eps = Torch.filled [| int64 chains; 1L |] e f64
            let mutable adjusted = torch.randn([| int64 chains; 1L |], dtype = f64, generator = g)
            let mutable unadjusted = adjusted.clone()
            let mutable accepted = 0.0
            for _ in 1 .. 150 do
                use _ = torch.NewDisposeScope()
                let z, _, a = Hmc.transition c target adjusted eps g
                accepted <- accepted + a.to_type(f64).mean().item<double>() / 150.0
                adjusted <- z.MoveToOuterDisposeScope()
                let p = torch.randn([| int64 chains; 1L |], dtype = f64, generator = g)
                let z', _, _, _ = Hmc.leapfrog target unadjusted p eps c.LeapfrogSteps
                unadjusted <- z'.MoveToOuterDisposeScope()
            let variance (z: Tensor) = z.var().item<double>()
            Expect.isLessThan accepted 0.9 (sprintf "the proposals are coarse enough to be rejected often: acceptance %.3f" accepted)
            within "mean" (adjusted.mean().item<double>()) 0.0 (5.0 / sqrt (float chains))
            within "variance with the Metropolis step" (variance adjusted) 1.0 (5.0 * sqrt (2.0 / float chains))
            let shadow = 1.0 / (1.0 - e * e / 4.0)
            within "variance without it" (variance unadjusted) shadow (0.05 * shadow)

        for kind, outside in [ "minus infinity", Double.NegativeInfinity; "NaN", Double.NaN ] do
            testCase (sprintf "a target of %s beyond a wall is never entered, and the chains sample the truncated normal" kind) <| fun () ->
                // N(0, 1) truncated to z <= 1: mean -phi(1)/Phi(1), variance 1 - phi(1)/Phi(1) - (phi(1)/Phi(1))^2.
                let target (z: Tensor) =
                    let inside = (z * z).sum(-1L) * -0.5
                    torch.where(z.squeeze(-1L).le(Torch.scalar 1.0), inside, torch.full_like(inside, outside))
                let g = Torch.generator 12L
                let chains = 8000
                let mutable z = -(torch.randn([| int64 chains; 1L |], dtype = f64, generator = g).abs())
                let mutable stepSize = 0.5
                for i in 1 .. 300 do
                    use _ = torch.NewDisposeScope()
                    let s = Hmc.step Hmc.paper (i <= 100) target z stepSize g
                    z <- s.Positions.MoveToOuterDisposeScope()
                    stepSize <- s.StepSize
                Expect.isTrue (z.isfinite().all().item<bool>()) "every position is finite"
                Expect.isTrue (z.le(Torch.scalar 1.0).all().item<bool>()) (sprintf "no chain crossed the wall: largest %g" (z.max().item<double>()))
                let phi, bigPhi = 0.24197072451914337, 0.8413447460685429
                let lambda = phi / bigPhi
                within "mean" (z.mean().item<double>()) (-lambda) (5.0 * sqrt (0.63 / float chains))
                within "variance" (z.var().item<double>()) (1.0 - lambda - lambda * lambda) (5.0 * 0.63 * sqrt (2.0 / float chains) + 0.01)

        testCase "samples of a correlated Gaussian have its moments" <| fun () ->
            let z, _ = sample (gaussian2 (correlated 0.9)) 4000 150 60 1L
            let n = 4000.0
            let cov = torch.cov(z.t()).data<double>().ToArray()
            let mean = z.mean([| 0L |]).data<double>().ToArray()
            within "mean x" mean.[0] 0.0 (5.0 / sqrt n)
            within "mean y" mean.[1] 0.0 (5.0 / sqrt n)
            within "var x" cov.[0] 1.0 (5.0 * sqrt (2.0 / n))
            within "var y" cov.[3] 1.0 (5.0 * sqrt (2.0 / n))
            within "cov xy" cov.[1] 0.9 (5.0 * sqrt ((1.0 + 0.81) / n))

        testCase "samples of an anisotropic Gaussian have its moments" <| fun () ->
            // Standard deviations 1 and 0.1: the step size must adapt to the narrow direction.
            let z, _ = sample (gaussian2 (array2D [ [ 1.0; 0.0 ]; [ 0.0; 100.0 ] ])) 4000 150 60 2L
            let n = 4000.0
            let var = z.var(0L).data<double>().ToArray()
            within "var x" var.[0] 1.0 (5.0 * sqrt (2.0 / n))
            within "var y" var.[1] 0.01 (5.0 * 0.01 * sqrt (2.0 / n))

        testCase "samples of a banana-shaped density have its moments" <| fun () ->
            let b = 0.5
            let z, _ = sample (banana b) 4000 200 100 3L
            let n = 4000.0
            let mean = z.mean([| 0L |]).data<double>().ToArray()
            let var = z.var(0L).data<double>().ToArray()
            within "E[x]" mean.[0] 0.0 (5.0 / sqrt n)
            within "E[y]" mean.[1] b (5.0 * sqrt ((1.0 + 2.0 * b * b) / n))
            within "Var[x]" var.[0] 1.0 (5.0 * sqrt (2.0 / n))
            // Var[y] = 1 + 2 b^2; its sampling error is larger (heavier tails): allow 10%.
            within "Var[y]" var.[1] (1.0 + 2.0 * b * b) (0.1 * (1.0 + 2.0 * b * b))

        testCase "per-chain adaptation gives each chain the step size of its own scale" <| fun () ->
            // Half the chains target N(0, 1), half N(0, 0.01^2): one shared step size cannot serve both.
            let g = Torch.generator 6L
            let chains = 400L
            let scale = torch.cat([| torch.ones(chains / 2L, dtype = f64); torch.full(chains / 2L, Torch.scalar 0.01, dtype = f64) |], 0L).unsqueeze(-1L)
            let f (z: Tensor) = ((z / scale) * (z / scale)).sum(-1L) * -0.5
            let mutable z = torch.randn([| chains; 2L |], dtype = f64, generator = g) * scale
            let mutable eps = torch.full([| chains; 1L |], Torch.scalar 0.1, dtype = f64)
            let accepts = ResizeArray()
            for i in 1 .. 600 do
                let positions, _, accepted = Hmc.transition Hmc.paper f z eps g
                z <- positions
                eps <- Hmc.adaptPerChain Hmc.paper eps accepted
                if i > 300 then accepts.Add(accepted.to_type(f64))
            let rate = torch.stack(accepts).mean([| 0L |])
            let wide, narrow = rate.narrow(0L, 0L, chains / 2L).mean().ToDouble(), rate.narrow(0L, chains / 2L, chains / 2L).mean().ToDouble()
            let ratio = (eps.narrow(0L, 0L, chains / 2L).mean() / eps.narrow(0L, chains / 2L, chains / 2L).mean()).ToDouble()
            Expect.isTrue (wide > 0.8 && wide < 0.97 && narrow > 0.8 && narrow < 0.97) (sprintf "acceptance %g (wide) and %g (narrow), target 0.9" wide narrow)
            Expect.isTrue (ratio > 50.0 && ratio < 200.0) (sprintf "step sizes differ by %g, the scales by 100" ratio)

        testCase "a gradient evaluation leaves only its value and gradient in the caller's dispose scope" <| fun () ->
            let f = gaussian2 (correlated 0.5)
            use scope = torch.NewDisposeScope()
            let z = torch.randn([| 5L; 2L |], dtype = f64, generator = Torch.generator 3L)
            let before = scope.DisposablesCount
            let v, g = Hmc.valueAndGradient f z
            Expect.equal (scope.DisposablesCount - before) 2 "tensors the evaluation left in the caller's scope"
            Expect.isFalse v.requires_grad "the value is detached"
            Expect.isFalse g.requires_grad "the gradient is detached"

        testCase "Monte Carlo EM's E-step holds one chunk's tensors at any number of chunks" <| fun () ->
            // Each chunk's trajectory is disposed before the next: what the E-step leaves behind is per chunk a few
            // results, not its leapfrog steps' tensors (at N = 50,000 those exhausted 24 GiB).
            let m = VaeModel.create { InputDim = 6; HiddenUnits = 5; LatentDim = 2; Likelihood = Bernoulli; DType = f64; InitStd = 0.3; HiddenLayers = 1 } (Torch.generator 2L)
            let left (chunks: int64) =
                use scope = torch.NewDisposeScope()
                let n = chunks * Mcem.Chunk
                let g = Torch.generator 4L
                let x = torch.rand([| n; 6L |], dtype = f64, generator = g)
                let mcmc = Mcem.initChains m n g
                let before = scope.DisposablesCount
                Mcem.eStep m x mcmc g |> ignore
                scope.DisposablesCount - before
            let one, three = left 1L, left 3L
            Expect.isLessThan (three - one) 10 (sprintf "the E-step left %d tensors for one chunk and %d for three" one three)

        testCase "step-size adaptation reaches the target acceptance" <| fun () ->
            let g = Torch.generator 5L
            let f = gaussian2 (correlated 0.95)
            let mutable z = torch.randn([| 200L; 2L |], dtype = f64, generator = g)
            let mutable eps = 5.0 // far too large at the start
            let rates = ResizeArray()
            for i in 1 .. 300 do
                let s = Hmc.step Hmc.paper true f z eps g
                z <- s.Positions
                eps <- s.StepSize
                if i > 200 then rates.Add s.AcceptRate
            let mean = Seq.average rates
            Expect.isTrue (mean > 0.85 && mean < 0.95) (sprintf "mean acceptance %g after adaptation, target 0.9" mean)
    ]
