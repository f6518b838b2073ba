package hermes

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/openmyst/openmyst/hermes/store"
)

// settleLease names the store lease whose holder settles: settlement sends
// transactions from the operator key (one nonce sequence), and a promise
// settled twice costs the gas of the refused second transaction.
const settleLease = "hermes-settlement"

func (s *Service) settleLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.SettleInterval)
	defer t.Stop()
	defer func() {
		// Hand the lease over now rather than after its TTL.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.st.ReleaseLease(rctx, settleLease, s.holder); err != nil {
			s.log.Warn("hermes: release settlement lease", "err", err)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.SettleOnce(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("hermes: settlement pass", "err", err)
			}
		}
	}
}

// SettleOnce runs one settlement pass: for every consumer whose revealed,
// unsettled promise amount reaches SettleThreshold, it settles the highest
// revealed promise on chain and records it. It reconciles each consumer's
// settled amount from the chain first. It returns how many settlements
// were sent; errors of single consumers are logged and counted, and the
// first is returned after the pass. Passes run one at a time, in one
// process at a time among those sharing the store: a pass runs only while
// this Service holds the store's settlement lease (renewed before each
// settlement), and otherwise returns 0 and no error.
func (s *Service) SettleOnce(ctx context.Context) (int, error) {
	s.settleMu.Lock()
	defer s.settleMu.Unlock()
	if held, err := s.holdSettleLease(ctx); err != nil || !held {
		return 0, err
	}
	consumers, err := s.st.Consumers(ctx)
	if err != nil {
		return 0, err
	}
	var first error
	sent := 0
	for _, c := range consumers {
		if ctx.Err() != nil {
			return sent, ctx.Err()
		}
		if new(big.Int).Sub(c.Promised, c.Settled).Cmp(s.cfg.SettleThreshold) < 0 {
			continue
		}
		// Renew before each transaction: a pass may outlast the TTL
		// (receipts wait for blocks), and a process that lost the lease
		// (paused past its TTL) must stop sending.
		if held, err := s.holdSettleLease(ctx); err != nil || !held {
			return sent, err
		}
		ok, err := s.settleConsumer(ctx, c)
		if err != nil {
			s.m.Settlements.WithLabelValues("error").Inc()
			s.log.Warn("hermes: settle consumer", "consumer", c.Identity.Hex(), "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		if ok {
			sent++
		}
	}
	return sent, first
}

// holdSettleLease takes or renews the settlement lease; false means
// another process holds it.
func (s *Service) holdSettleLease(ctx context.Context) (bool, error) {
	held, err := s.st.AcquireLease(ctx, settleLease, s.holder, s.now(), s.cfg.SettleLeaseTTL)
	if err != nil {
		return false, fmt.Errorf("hermes: settlement lease: %w", err)
	}
	if !held {
		s.log.Debug("hermes: another process holds the settlement lease")
	}
	return held, nil
}

func (s *Service) settleConsumer(ctx context.Context, c store.Consumer) (bool, error) {
	info, err := s.channel(ctx, c.Identity, true)
	if err != nil {
		return false, err
	}
	if info.Settled.Cmp(c.Settled) > 0 {
		if err := s.st.SetSettled(ctx, c.Identity, info.Settled, nil); err != nil {
			return false, err
		}
	}
	e, err := s.st.SettleCandidate(ctx, c.Identity)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil // nothing revealed yet
	}
	if err != nil {
		return false, err
	}
	amount := e.ConsumerPromise.Amount
	if new(big.Int).Sub(amount, info.Settled).Cmp(s.cfg.SettleThreshold) < 0 {
		return false, nil
	}
	tx, err := s.chain.SettleConsumerPromise(ctx, c.Identity, e.ConsumerPromise, e.R)
	if err != nil {
		// Someone else (another hermes process on the same database, or
		// anyone holding R) may have settled it since the read above:
		// then the chain refuses with nothing to settle. That is not a
		// failure: take the chain's settled amount and move on.
		if info, rerr := s.channel(ctx, c.Identity, true); rerr == nil && info.Settled.Cmp(amount) >= 0 {
			s.invalidate(c.Identity)
			if serr := s.st.SetSettled(ctx, c.Identity, info.Settled, nil); serr != nil {
				return false, serr
			}
			s.log.Info("hermes: consumer promise was already settled on chain", "consumer", c.Identity.Hex(), "amount", amount.String(), "settled", info.Settled.String())
			return false, nil
		}
		return false, err
	}
	s.invalidate(c.Identity)
	if err := s.st.SetSettled(ctx, c.Identity, amount, &store.Settlement{Consumer: c.Identity, Amount: amount, TxHash: tx, At: time.Now()}); err != nil {
		return true, err
	}
	s.m.Settlements.WithLabelValues("ok").Inc()
	s.log.Info("hermes: settled consumer promise", "consumer", c.Identity.Hex(), "amount", amount.String(), "tx", tx.Hex())
	return true, nil
}
