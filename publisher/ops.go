package publisher

// Sessions counts the recovery service's FIX sessions logged on now, for operators.
func (s *RecoveryService) Sessions() int { return len(s.acc.Sessions()) }
