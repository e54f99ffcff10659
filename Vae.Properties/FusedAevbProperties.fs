/// The hand-derived AEVB step (FusedAevb) against autograd, in float64.
module Vae.Properties.FusedAevbProperties

open Expecto
open FsCheck
open TorchSharp
open Vae.Core
open Vae.Properties.Generators

/// A float64 Bernoulli-decoder model with parameters spread wide enough that every term of the gradient matters.
let private model (seed: int) (d: int) (h: int) (j: int) =
    VaeModel.create { InputDim = d; HiddenUnits = h; LatentDim = j; Likelihood = Bernoulli; DType = f64; InitStd = 0.5 } (Torch.generator (int64 seed))

let private maxAbs (a: Tensor) (b: Tensor) = (a - b).abs().max().item<double> ()

[<Tests>]
let tests =
    testList "fused AEVB step" [
        testPropertyWithConfig (config 25) "the hand-derived gradient of estimator B with the weight prior equals autograd's" <| fun (seed: int) (dn: PositiveInt) (hn: PositiveInt) (jn: PositiveInt) (mn: PositiveInt) (prior: bool) (grey: bool) ->
            use _ = torch.NewDisposeScope()
            let d, h, j, m = size dn 1 12, size hn 1 9, size jn 1 5, size mn 1 7
            let c = { Aevb.paper 0.02 with BatchSize = m; WeightPrior = prior }
            let g = Torch.generator (int64 seed + 11L)
            let x = torch.rand([| int64 m; int64 d |], dtype = f64, generator = g)
            let x = if grey then x else torch.bernoulli(x, generator = g)
            let eps = torch.randn([| 1L; int64 m; int64 j |], dtype = f64, generator = g)
            let n = 1000L
            let state = Aevb.init (model seed d h j)
            let objective, perDatapoint = Aevb.objective c n state.Model x eps
            let expected = torch.autograd.grad([| objective |], VaeModel.tensors state.Model) |> Seq.toArray
            let b = FusedAevb.adopt state
            let bound = FusedAevb.gradient c n b x (eps.squeeze(0L))
            let worst = Array.map2 maxAbs (VaeModel.tensors b.GradientModel) expected |> Array.max
            let scale = expected |> Array.map (fun t -> t.abs().max().item<double> ()) |> Array.max
            worst <= 1e-10 * max 1.0 scale && abs (bound.item<double> () - perDatapoint.mean().item<double> ()) < 1e-10

        testCase "fused training follows Aevb.step's trajectory: same draws, same Adagrad, equal parameters to rounding" <| fun () ->
            use _ = torch.NewDisposeScope()
            let data = torch.rand([| 300L; 20L |], dtype = f64, generator = Torch.generator 5L)
            let c = { Aevb.paper 0.05 with BatchSize = 10 }
            let init () = Aevb.init (model 3 20 8 3)
            let mutable reference = init ()
            let gr = Torch.generator 9L
            let mutable fused = FusedAevb.prepare (init ())
            let b = FusedAevb.buffersOf fused
            let gf = Torch.generator 9L
            for _ in 1 .. 150 do // past Adagrad's 100-minibatch warm-up
                let r, br = Aevb.step c data gr reference
                let f, bf = FusedAevb.step c data gf b fused
                reference <- r
                fused <- f
                Expect.floatClose Accuracy.high bf br "the minibatch bounds agree"
            let worst = Array.map2 maxAbs (VaeModel.tensors fused.Model) (VaeModel.tensors reference.Model) |> Array.max
            Expect.isLessThan worst 1e-9 "parameters after 150 steps"
            Expect.equal fused.Optimizer.Steps reference.Optimizer.Steps "Adagrad's step count"
            let sums = Array.map2 maxAbs fused.Optimizer.SumSquares reference.Optimizer.SumSquares |> Array.max
            Expect.isLessThan sums 1e-9 "Adagrad's accumulators"

        testCase "a non-finite bound stops the fused step before any update" <| fun () ->
            use _ = torch.NewDisposeScope()
            let data = torch.rand([| 50L; 6L |], dtype = f64, generator = Torch.generator 1L)
            let c = { Aevb.paper 0.02 with BatchSize = 5; Optimizer = { Adagrad.paper 0.02 with WarmUp = 0 } }
            let s = FusedAevb.prepare (Aevb.init (model 1 6 4 2))
            let b = FusedAevb.buffersOf s
            (VaeModel.tensors s.Model).[0].[0L, 0L] <- torch.tensor(nan, dtype = f64)
            let before = b.Parameters.clone()
            Expect.throwsT<NonFiniteBoundException> (fun () -> FusedAevb.step c data (Torch.generator 2L) b s |> ignore) "a NaN weight"
            Expect.equal (maxAbs (before.nan_to_num()) (b.Parameters.nan_to_num())) 0.0 "the parameters are unchanged"
    ]

[<Tests>]
let preparation =
    testCase "preparing a state that is already flat keeps its values and its step count" <| fun () ->
        use _ = torch.NewDisposeScope()
        let data = torch.rand([| 100L; 6L |], dtype = f64, generator = Torch.generator 1L)
        let c = { Aevb.paper 0.02 with BatchSize = 5; Optimizer = { Adagrad.paper 0.02 with WarmUp = 2 } }
        let s = FusedAevb.prepare (Aevb.init (model 1 6 4 2))
        let b = FusedAevb.buffersOf s
        let g = Torch.generator 2L
        let mutable t = s
        for _ in 1 .. 5 do t <- fst (FusedAevb.step c data g b t)
        let again = FusedAevb.prepare t
        Expect.equal again.Optimizer.Steps 5L "the step count"
        Expect.isTrue (obj.ReferenceEquals(again.Model, t.Model)) "the same flat model, nothing copied"
        Expect.isTrue (obj.ReferenceEquals(FusedAevb.buffersOf again, b)) "the same buffers"

[<Tests>]
let mixedPrecision =
    testPropertyWithConfig (config 15) "the bfloat16 mixed-precision gradient is within 3 % of the float32 gradient" <| fun (seed: int) (mn: PositiveInt) ->
        use _ = torch.NewDisposeScope()
        let d, h, j, m = 30, 16, 3, 5 + mn.Get % 20
        let g = Torch.generator (int64 seed)
        let model =
            VaeModel.create { InputDim = d; HiddenUnits = h; LatentDim = j; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.3 } g
        let x = torch.rand([| int64 m; int64 d |], generator = g)
        let eps = torch.randn([| int64 m; int64 j |], generator = g)
        let c = { Aevb.paper 0.02 with BatchSize = m }
        let full = FusedAevb.adopt (Aevb.init model)
        let boundFull = (FusedAevb.gradient c 1000L full x eps).item<float32> ()
        let mixed = FusedAevb.adopt (Aevb.init model)
        let boundMixed = (FusedAevb.gradient { c with MixedPrecision = true } 1000L mixed x eps).item<float32> ()
        let relative = (mixed.Gradient - full.Gradient).norm().item<float32> () / full.Gradient.norm().item<float32> ()
        relative < 0.03f && abs (boundMixed - boundFull) < 0.01f * abs boundFull
